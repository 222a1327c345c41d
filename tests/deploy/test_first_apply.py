"""What a real cluster does with the manifests that offline schema checks cannot see: its
storage classes and GPU labels, TensorFlow Serving's start and stop, rollouts, drains, memory
and priorities. Each test names the failure it keeps away."""

from __future__ import annotations

import re

import pytest
import yaml
from rendered import (
    K8S,
    KUSTOMIZATIONS,
    OVERLAY_PATHS,
    Manifest,
    component_choices,
    config_map,
    container,
    containers,
    find,
    pod_specs,
    render,
)

from services.gateway.settings import GatewaySettings

# CoreDNS's default TTL for a headless Service's records: how long a gateway may still be
# told about a pod that has left the endpoints.
DNS_TTL_S = 5
# An idle, warmed-up gateway's resident memory (RELIABILITY.md, the cancel storm: 693 to
# 697 MiB), rounded up.
GATEWAY_BASELINE_MIB = 768
SERVING = ("tfserving", "gateway")


def _mebibytes(quantity: str) -> float:
    units = {"Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi|Ti)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * units[unit]


def _gateway_settings(manifests: tuple[Manifest, ...]) -> GatewaySettings:
    env = config_map(manifests, "gateway-config")["data"]
    fields = {
        name.removeprefix("GATEWAY_").lower(): value
        for name, value in env.items()
        if not name.startswith("GATEWAY_TLS_")
    }
    return GatewaySettings.model_validate(fields)


def test_deleting_an_overlay_keeps_the_namespace_and_the_trained_models() -> None:
    foundation = render("foundation")
    assert find(foundation, "Namespace", "tf-serving-suite")
    assert find(foundation, "PersistentVolumeClaim", "model-repository")
    for kustomization in KUSTOMIZATIONS:
        if kustomization == "foundation":
            continue
        kinds = {manifest["kind"] for manifest in render(kustomization)}
        assert not kinds & {"Namespace", "PersistentVolumeClaim", "PriorityClass"}, kustomization


@pytest.mark.parametrize("component", component_choices("storage"))
def test_each_storage_choice_gives_a_volume_every_pod_can_use(component: str) -> None:
    manifests = render("foundation", (component,))
    claim = find(manifests, "PersistentVolumeClaim", "model-repository")["spec"]
    if component == "storage/single-node":
        assert claim["accessModes"] == ["ReadWriteOnce"]
        return
    assert claim["accessModes"] == ["ReadWriteMany"]
    name = claim["storageClassName"]
    classes = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "StorageClass"}
    if name in classes:
        # NFS-like volumes ignore fsGroup: the class itself must let uid 10001 write.
        storage_class = classes[name]
        options = storage_class.get("mountOptions", [])
        parameters = storage_class.get("parameters", {})
        assert "uid=10001" in options or parameters.get("uid") == "10001", name
        assert storage_class["reclaimPolicy"] == "Retain", name
    else:
        assert name == "standard-rwx"  # GKE's own Filestore class
        assert _mebibytes(claim["resources"]["requests"]["storage"]) >= 1024 * 1024


def test_gpu_pods_are_placed_by_their_gpu_request_alone() -> None:
    # A node selector on a label that only the NVIDIA GPU Operator sets would leave the pods
    # Pending on clusters whose GPU nodes come without it (GKE, EKS GPU AMIs).
    for kustomization in ("overlays/gpu", "training"):
        for workload, spec in pod_specs(render(kustomization)):
            gpus = [
                box
                for box in spec["containers"]
                if "nvidia.com/gpu" in box["resources"].get("limits", {})
            ]
            if not gpus:
                continue
            selector = spec.get("nodeSelector", {})
            affinity = yaml.safe_dump(spec.get("affinity", {}))
            assert not [key for key in selector if key.startswith("nvidia.com/")], workload
            assert "nvidia.com/" not in affinity, workload
            assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
                "tolerations"
            ]


def test_a_first_start_on_a_new_gpu_has_time_to_compile_and_keeps_its_kernels() -> None:
    manifests = render("overlays/gpu")
    serving = container(manifests, "tfserving")
    probe = serving["startupProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] >= 30 * 60
    env = {item["name"]: item.get("value") for item in serving["env"]}
    cache = env["CUDA_CACHE_PATH"]
    assert int(env["CUDA_CACHE_MAXSIZE"]) >= 2**31
    pod = find(manifests, "Deployment", "tfserving")["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in serving["volumeMounts"]}
    volume = next(v for v in pod["volumes"] if v["name"] == mounts[cache])
    assert "emptyDir" in volume  # writable, and kept across the container's restarts

    # Without a GPU there is nothing to compile: the base keeps its 5 minutes.
    cpu = container(render("overlays/cpu"), "tfserving")["startupProbe"]
    assert cpu["periodSeconds"] * cpu["failureThreshold"] == 5 * 60


def test_a_gpu_rollout_needs_no_spare_gpu() -> None:
    manifests = render("overlays/gpu")
    strategy = find(manifests, "Deployment", "tfserving")["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxSurge"] == 0 and strategy["maxUnavailable"] == 1
    budget = find(manifests, "PodDisruptionBudget", "tfserving")["spec"]
    assert budget["maxUnavailable"] == 1


@pytest.mark.parametrize("overlay", OVERLAY_PATHS)
def test_the_gateway_starts_and_stays_alive_without_a_model_server(overlay: str) -> None:
    # On a fresh cluster TensorFlow Serving waits for its models; the gateway must not be
    # restarted meanwhile, only kept out of the Service until it reaches one.
    gateway = container(render(overlay), "gateway")
    for probe in ("startupProbe", "livenessProbe"):
        assert gateway[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}, probe
    assert gateway["readinessProbe"]["grpc"]["port"] == 8086


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_probes_give_a_busy_server_time_to_answer(kustomization: str) -> None:
    for workload, box in containers(render(kustomization)):
        for name in ("startupProbe", "readinessProbe", "livenessProbe"):
            if name in box:
                probe = box[name]
                where = f"{workload['metadata']['name']} {name}"
                assert probe.get("timeoutSeconds", 1) >= 5, where
                if name == "readinessProbe":
                    assert probe.get("failureThreshold", 3) >= 3, where


@pytest.mark.parametrize("overlay", OVERLAY_PATHS)
def test_a_node_drain_takes_one_gateway_at_a_time(overlay: str) -> None:
    budget = find(render(overlay), "PodDisruptionBudget", "gateway")["spec"]
    assert budget["maxUnavailable"] == 1 and "minAvailable" not in budget


@pytest.mark.parametrize("overlay", OVERLAY_PATHS)
def test_the_gateway_memory_limit_holds_every_call_it_admits(overlay: str) -> None:
    manifests = render(overlay)
    settings = _gateway_settings(manifests)
    limit = _mebibytes(container(manifests, "gateway")["resources"]["limits"]["memory"])
    # Each call in flight may hold its request's bytes and the message parsed from them.
    per_call_mib = 2 * settings.max_message_bytes / 2**20
    assert limit >= GATEWAY_BASELINE_MIB + settings.max_concurrent_rpcs * per_call_mib


@pytest.mark.parametrize("overlay", OVERLAY_PATHS)
def test_serving_outranks_training_for_nodes_and_gpus(overlay: str) -> None:
    classes = {
        m["metadata"]["name"]: m for m in render("foundation") if m["kind"] == "PriorityClass"
    }
    serving = classes["tf-serving-suite-serving"]
    training = classes["tf-serving-suite-training"]
    assert serving["value"] > training["value"]
    assert training["preemptionPolicy"] == "Never"
    assert not serving.get("globalDefault") and not training.get("globalDefault")
    for name in SERVING:
        pod = find(render(overlay), "Deployment", name)["spec"]["template"]["spec"]
        assert pod["priorityClassName"] == "tf-serving-suite-serving", name
    for _, spec in pod_specs(render("training")):
        assert spec["priorityClassName"] == "tf-serving-suite-training"


@pytest.mark.parametrize("overlay", OVERLAY_PATHS)
def test_serving_pods_spread_over_zones_and_nodes(overlay: str) -> None:
    for name in SERVING:
        pod = find(render(overlay), "Deployment", name)["spec"]["template"]["spec"]
        spread = {c["topologyKey"]: c for c in pod["topologySpreadConstraints"]}
        assert set(spread) == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}, name
        for constraint in spread.values():
            assert constraint["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": name}
            # Preferred: a single-zone or single-node cluster still schedules every pod.
            assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"


@pytest.mark.parametrize("overlay", OVERLAY_PATHS)
def test_tensorflow_serving_stops_only_once_no_call_can_reach_it(overlay: str) -> None:
    # TensorFlow Serving dies at SIGTERM, so the preStop wait is all the drain it gets: the
    # pod leaves the endpoints, DNS forgets it within its TTL, the gateway re-resolves within
    # a refresh, and the calls already sent finish within the backend timeout.
    manifests = render(overlay)
    settings = _gateway_settings(manifests)
    serving = container(manifests, "tfserving")
    pre_stop_s = serving["lifecycle"]["preStop"]["sleep"]["seconds"]
    # More than their sum: the endpoint removal itself takes a moment to reach DNS.
    assert pre_stop_s > DNS_TTL_S + settings.model_refresh_s + settings.backend_timeout_s
    pod = find(manifests, "Deployment", "tfserving")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > pre_stop_s


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_no_object_assumes_the_cluster_domain(kustomization: str) -> None:
    # Clusters may run under a domain other than cluster.local; the pods' DNS search list
    # completes a `<service>.<namespace>.svc` name on any of them.
    text = yaml.safe_dump_all(render(kustomization))
    assert "cluster.local" not in text


def test_the_wait_for_models_script_is_what_the_init_container_runs() -> None:
    for overlay in OVERLAY_PATHS:
        manifests = render(overlay)
        pod = find(manifests, "Deployment", "tfserving")["spec"]["template"]["spec"]
        (init,) = pod["initContainers"]
        assert init["image"] == container(manifests, "tfserving")["image"]
        assert init["command"] == [
            "/bin/sh",
            "/etc/tfserving/wait-for-models.sh",
            "/etc/tfserving/models.config",
        ]
        script = config_map(manifests, "tfserving-config")["data"]["wait-for-models.sh"]
        assert script == (K8S / "base" / "tfserving" / "wait-for-models.sh").read_text()


@pytest.mark.parametrize("overlay", OVERLAY_PATHS)
def test_the_gateway_moves_long_lived_clients_to_new_connections(overlay: str) -> None:
    # So that pods the autoscaler adds get a share of the clients already connected
    # (RELIABILITY.md, "A replica that stops").
    settings = _gateway_settings(render(overlay))
    assert settings.max_connection_age_s == 300
    assert settings.max_connection_age_grace_s >= settings.backend_timeout_s
