"""The Kubernetes manifests, rendered as `kubectl apply -k` would, checked offline: against the
Kubernetes schemas in strict mode, and against the policies a platform engineer would ask for."""

from __future__ import annotations

import copy
import re
from pathlib import Path, PurePosixPath
from typing import Any

import custom_resources
import kubernetes_validate
import pytest
from google.protobuf import text_format
from network_policy import Source, admits
from rendered import (
    KUBERNETES_MIN_VERSION,
    KUBERNETES_VERSION,
    KUSTOMIZATIONS,
    OVERLAY_PATHS,
    OVERLAYS,
    REPO,
    Manifest,
    component_combinations,
    config_map,
    container,
    containers,
    find,
    pod_specs,
    render,
)
from tensorflow_serving.config import model_server_config_pb2

from services.gateway.backend_channel import channel_options
from services.gateway.settings import GatewaySettings
from services.modelserver.batching import BatchingOptions
from services.modelserver.settings import parse_settings
from services.suite.model_config import model_config_text
from training.jobs import JOBS

NAMESPACE = "tf-serving-suite"
GATEWAY_CERTIFICATE_NAME = f"gateway.{NAMESPACE}.svc"
# The namespace label that lets Prometheus (or any scraper) in to the metrics ports.
SCRAPER_LABEL = "tf-serving-suite/metrics-scraper"
# Containers that serve nothing a probe could ask: Jobs run to completion, and Locust workers
# listen on no port (the master drops one that stops reporting).
UNPROBED = {"Job"}
UNPROBED_DEPLOYMENTS = {"locust-worker"}


@pytest.mark.parametrize("version", [KUBERNETES_MIN_VERSION, KUBERNETES_VERSION])
@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_object_validates_against_the_kubernetes_schemas(
    kustomization: str, version: str
) -> None:
    manifests = render(kustomization)
    assert manifests
    for manifest in manifests:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_the_readme_names_the_oldest_kubernetes_the_manifests_need() -> None:
    readme = (REPO / "README.md").read_text()
    assert f"Kubernetes {KUBERNETES_MIN_VERSION} or later" in readme
    # What needs it: the preStop sleep action, which is off by default before 1.30.
    uses_sleep = [
        workload["metadata"]["name"]
        for kustomization in OVERLAY_PATHS
        for workload, box in containers(render(kustomization))
        if "sleep" in box.get("lifecycle", {}).get("preStop", {})
    ]
    assert uses_sleep


@pytest.mark.parametrize(
    ("kustomization", "components"),
    list(component_combinations()),
    ids=lambda value: "+".join(value) if isinstance(value, tuple) else value,
)
def test_every_combination_of_components_renders_and_validates(
    kustomization: str, components: tuple[str, ...]
) -> None:
    manifests = render(kustomization, components)
    assert len(manifests) >= len(render(kustomization))
    for manifest in manifests:
        # Core kinds strictly against the Kubernetes schemas, CRD kinds against theirs.
        custom_resources.validate(manifest)


def test_strict_validation_refuses_a_field_kubernetes_does_not_know() -> None:
    deployment = copy.deepcopy(find(render("overlays/gpu"), "Deployment", "gateway"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpcc"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_container_is_sized_and_locked_down(kustomization: str) -> None:
    for workload, spec in pod_specs(render(kustomization)):
        name = workload["metadata"]["name"]
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True, name
        assert pod_security["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        for box in spec["containers"]:
            resources = box["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert resources["limits"]["memory"] == resources["requests"]["memory"], name
            security = box["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"]["drop"] == ["ALL"], name


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_server_has_readiness_and_liveness_probes(kustomization: str) -> None:
    probed = 0
    for workload, spec in pod_specs(render(kustomization)):
        name = workload["metadata"]["name"]
        if workload["kind"] in UNPROBED or name in UNPROBED_DEPLOYMENTS:
            continue
        for box in spec["containers"]:  # init containers run to completion
            assert "readinessProbe" in box and "livenessProbe" in box, name
            probed += 1
    if kustomization not in ("training", "foundation"):
        assert probed


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_image_is_pinned_to_a_version(kustomization: str) -> None:
    for workload, box in containers(render(kustomization)):
        image = box["image"]
        # A digest, once pinned (README: "Images"), follows the tag it was taken from.
        repository, _, tag = image.partition("@sha256:")[0].rpartition(":")
        assert repository and "/" not in tag, f"{workload['metadata']['name']}: {image} has no tag"
        assert tag != "latest", f"{workload['metadata']['name']}: {image}"


def test_tensorflow_serving_gets_a_gpu_in_the_gpu_overlay_only() -> None:
    gpu = render("overlays/gpu")
    serving = container(gpu, "tfserving")
    image = serving["image"].partition("@")[0]
    assert image.startswith("tensorflow/serving:") and image.endswith("-gpu")
    assert serving["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"name": "TF_FORCE_GPU_ALLOW_GROWTH", "value": "true"} in serving["env"]
    pod = find(gpu, "Deployment", "tfserving")["spec"]["template"]["spec"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]

    cpu = container(render("overlays/cpu"), "tfserving")
    assert "/modelserver:" in cpu["image"]
    assert "nvidia.com/gpu" not in cpu["resources"].get("limits", {})


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_tensorflow_serving_service_is_headless(overlay: str) -> None:
    service = find(render(f"overlays/{overlay}"), "Service", "tfserving")
    assert service["spec"]["clusterIP"] == "None"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_reaches_every_tensorflow_serving_pod_round_robin(overlay: str) -> None:
    manifests = render(f"overlays/{overlay}")
    target = config_map(manifests, "gateway-config")["data"]["GATEWAY_MODEL_SERVER"]
    assert target == f"dns:///tfserving.{NAMESPACE}.svc:8500"
    assert find(manifests, "Service", "tfserving")["spec"]["ports"][0]["port"] == 8500
    assert ("grpc.lb_policy_name", "round_robin") in channel_options(4 * 1024 * 1024)


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_file_an_argument_names_is_mounted_from_an_object_that_exists(
    kustomization: str,
) -> None:
    manifests = render(kustomization)
    checked = 0
    for _, spec in pod_specs(manifests):
        for box in spec["containers"]:
            values = [*box.get("args", []), *_env_values(manifests, box)]
            for path in _absolute_paths(values):
                source = _mounted_source(spec, box, path)
                if source is None:
                    continue  # an emptyDir or a volume claim: checked elsewhere
                kind, name, key = source
                # Secrets are made in the cluster, never kept here (README: Deploy).
                if kind == "ConfigMap":
                    assert key in find(manifests, kind, name)["data"], f"{name} has no {key}"
                checked += 1
    if kustomization.startswith("overlays/"):
        assert checked >= 4  # three TensorFlow Serving config files and the TLS certificate


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_tensorflow_serving_serves_all_five_models_from_the_repository(overlay: str) -> None:
    manifests = render(f"overlays/{overlay}")
    text = config_map(manifests, "tfserving-config")["data"]["models.config"]
    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    assert [model.name for model in config.model_config_list.config] == list(JOBS)
    expected = text_format.Parse(
        model_config_text(Path("/models"), list(JOBS)),
        model_server_config_pb2.ModelServerConfig(),
    )
    assert config == expected
    mounts = {m["name"]: m for m in container(manifests, "tfserving")["volumeMounts"]}
    assert mounts["models"]["mountPath"] == "/models" and mounts["models"]["readOnly"] is True


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_our_model_server_accepts_the_same_command_line_and_config_files(
    overlay: str, tmp_path: Path
) -> None:
    manifests = render(f"overlays/{overlay}")
    serving = container(manifests, "tfserving")
    assert serving["command"] == ["tensorflow_model_server"]
    settings = parse_settings(serving["args"])
    assert settings.enable_batching and settings.enable_grpc_healthcheck_service
    assert settings.rest_api_port == 8501 and settings.monitoring_config_file
    assert "grpc.max_connection_age_ms=" in settings.grpc_channel_arguments

    batching = tmp_path / "batching.config"
    batching.write_text(config_map(manifests, "tfserving-config")["data"]["batching.config"])
    options = BatchingOptions.from_file(str(batching))
    assert options.max_batch_size >= 64


def test_the_gpu_overlay_batches_for_a_gpu() -> None:
    text = config_map(render("overlays/gpu"), "tfserving-config")["data"]["batching.config"]
    assert "batch_timeout_micros { value: 2000 }" in text
    assert "allowed_batch_sizes: 256" in text


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_settings_come_from_its_config_map_and_secrets(
    overlay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = render(f"overlays/{overlay}")
    gateway = container(manifests, "gateway")
    env = dict(config_map(manifests, "gateway-config")["data"])
    # The Secrets' files and values stand in for the ones the cluster mounts.
    for variable in ("GATEWAY_TLS_CERT_FILE", "GATEWAY_TLS_KEY_FILE"):
        stand_in = tmp_path / PurePosixPath(env[variable]).name
        stand_in.write_text("PEM")
        env[variable] = str(stand_in)
    secret_env = {item["name"]: item["valueFrom"]["secretKeyRef"] for item in gateway["env"]}
    assert secret_env["GATEWAY_AUTH_TOKEN"] == {"name": "gateway-auth", "key": "token"}
    env["GATEWAY_AUTH_TOKEN"] = "a-token"
    monkeypatch.delenv("GATEWAY_HOST", raising=False)  # only what the ConfigMap says
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)

    settings = GatewaySettings.from_args([])
    # The pod's address, which kubelet's probes, the Service and Prometheus connect to.
    assert settings.host == "::"
    assert settings.health_port == 8086 and settings.tls_cert_file is not None
    ports = {port["name"]: port["containerPort"] for port in gateway["ports"]}
    assert ports == {"grpc": settings.port, "health": 8086, "metrics": settings.metrics_port}
    assert gateway["readinessProbe"]["grpc"]["port"] == settings.health_port

    pod = find(manifests, "Deployment", "gateway")["spec"]["template"]["spec"]
    pre_stop_s = gateway["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > pre_stop_s + settings.shutdown_grace_s


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_scales_and_survives_disruptions(overlay: str) -> None:
    manifests = render(f"overlays/{overlay}")
    autoscaler = find(manifests, "HorizontalPodAutoscaler", "gateway")
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == "gateway"
    assert autoscaler["spec"]["maxReplicas"] > autoscaler["spec"]["minReplicas"] >= 1
    budget = find(manifests, "PodDisruptionBudget", "gateway")
    assert budget["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "gateway"}
    assert "replicas" not in find(manifests, "Deployment", "gateway")["spec"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_gateway_reaches_tensorflow_serving_and_only_labelled_namespaces_scrape(
    overlay: str,
) -> None:
    manifests = render(f"overlays/{overlay}")
    deny = find(manifests, "NetworkPolicy", "default-deny-ingress")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}
    serving = find(manifests, "NetworkPolicy", "tfserving-from-gateway")["spec"]
    (rule,) = serving["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}}}]
    assert [port["port"] for port in rule["ports"]] == [8500]

    # Each pod's metrics port, as its prometheus.io annotations announce it.
    scraped = {
        workload["metadata"]["name"]: (
            workload["spec"]["template"]["metadata"]["labels"],
            int(workload["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"]),
        )
        for workload, _ in pod_specs(manifests)
    }
    assert {port for _, port in scraped.values()} == {8501, 9090}
    # Prometheus in whatever namespace the operator labelled, and what must stay out: an
    # unlabelled namespace, even one named monitoring, and any other pod of the suite's own.
    labelled = Source.pod_in("observability", {SCRAPER_LABEL: "true"})
    unlabelled = Source.pod_in("monitoring")
    neighbour = Source.pod_in(NAMESPACE, **{"app.kubernetes.io/name": "locust-master"})
    for name, (labels, port) in scraped.items():
        assert admits(manifests, NAMESPACE, labels, port, labelled), name
        assert not admits(manifests, NAMESPACE, labels, port, unlabelled), name
        assert not admits(manifests, NAMESPACE, labels, port, neighbour), name
    # The label opens the metrics ports, and nothing else but what is open to all.
    gateway_labels, _ = scraped["gateway"]
    assert not admits(manifests, NAMESPACE, gateway_labels, 8086, labelled)
    serving_labels, _ = scraped["tfserving"]
    assert not admits(manifests, NAMESPACE, serving_labels, 8500, labelled)


def test_one_training_job_per_model_publishes_into_the_shared_repository() -> None:
    jobs = {m["metadata"]["name"]: m for m in render("training") if m["kind"] == "Job"}
    assert set(jobs) == {f"train-{name}" for name in JOBS}
    for name in JOBS:
        spec = jobs[f"train-{name}"]["spec"]["template"]["spec"]
        (box,) = spec["containers"]
        assert box["args"][:1] == [name]
        assert box["args"][box["args"].index("--models-dir") + 1] == "/models"
        assert box["resources"]["limits"]["nvidia.com/gpu"] == "1"
        (models,) = [v for v in spec["volumes"] if v["name"] == "models"]
        assert models["persistentVolumeClaim"]["claimName"] == "model-repository"
        assert not models["persistentVolumeClaim"].get("readOnly", False)


def test_the_load_test_runs_the_locustfile_with_the_worker_count_as_one_setting() -> None:
    manifests = render("loadtest")
    workers = find(manifests, "Deployment", "locust-worker")
    assert workers["spec"]["replicas"] == 4
    master = container(manifests, "locust-master")
    assert master["args"] == ["--master"]
    worker = container(manifests, "locust-worker")
    assert "--master-host=locust-master" in worker["args"]
    host = config_map(manifests, "locust-config")["data"]["LOCUST_HOST"]
    # The name the README has the gateway's certificate carry: Locust checks it.
    assert host == f"{GATEWAY_CERTIFICATE_NAME}:50051"
    assert f"must name {GATEWAY_CERTIFICATE_NAME}" in (REPO / "README.md").read_text()


def _env_values(manifests: tuple[Manifest, ...], box: Manifest) -> list[str]:
    values = [item["value"] for item in box.get("env", []) if "value" in item]
    for source in box.get("envFrom", []):
        name = source["configMapRef"]["name"]
        values += list(find(manifests, "ConfigMap", name)["data"].values())
    return values


def _absolute_paths(values: list[str]) -> list[PurePosixPath]:
    paths = []
    for value in values:
        for candidate in re.findall(r"(?:^|=)(/[\w./-]+)$", value):
            paths.append(PurePosixPath(candidate))
    return paths


def _mounted_source(
    spec: Manifest, box: Manifest, path: PurePosixPath
) -> tuple[str, str, str] | None:
    """(kind, name, key) of the ConfigMap or Secret a file path is mounted from, or None for
    other volumes. Fails if no volume is mounted at the path's folder."""
    volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
    for mount in box.get("volumeMounts", []):
        folder = PurePosixPath(mount["mountPath"])
        if path == folder or folder in path.parents:
            volume: dict[str, Any] = volumes[mount["name"]]
            key = str(path.relative_to(folder))
            if "configMap" in volume:
                return "ConfigMap", volume["configMap"]["name"], key
            if "secret" in volume:
                return "Secret", volume["secret"]["secretName"], key
            return None
    raise AssertionError(f"{box['name']} names {path}, but nothing is mounted there")
