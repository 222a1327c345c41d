"""The optional components for monitoring, outside access and autoscaling, rendered on top of
each serving overlay as the README's steps add them, and checked against what the servers and
the base manifests really do."""

from __future__ import annotations

import copy
import re
from pathlib import Path, PurePosixPath

import custom_resources
import grpc
import jsonschema
import promql
import pytest
from google.protobuf import text_format
from network_policy import Source, admits, selects
from rendered import (
    COMPONENT_GROUPS,
    OVERLAYS,
    Manifest,
    component_choices,
    config_map,
    container,
    find,
    render,
)

from services.gateway.metrics import GatewayMetrics
from services.gateway.settings import GatewaySettings
from services.generated.gateway.v1 import gateway_pb2
from services.generated.modelserver.config.v1 import server_files_pb2

NAMESPACE = "tf-serving-suite"
SCRAPER_NAMESPACE = Source.pod_in("monitoring", {"tf-serving-suite/metrics-scraper": "true"})
API = gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"]
STATUS_CODES = {code.name for code in grpc.StatusCode}
# A client's own mistakes, which no server-side error rate counts.
CLIENT_CODES = {"OK", "CANCELLED", "INVALID_ARGUMENT", "NOT_FOUND", "UNAUTHENTICATED"}
NEW_GROUPS = ("monitoring", "exposure", "autoscaling")


def _with(overlay: str, component: str) -> tuple[Manifest, ...]:
    return render(f"overlays/{overlay}", (component,))


def _pod_labels(manifests: tuple[Manifest, ...], deployment: str) -> dict[str, str]:
    labels: dict[str, str] = find(manifests, "Deployment", deployment)["spec"]["template"][
        "metadata"
    ]["labels"]
    return labels


def _container_port(manifests: tuple[Manifest, ...], deployment: str, port: int | str) -> int:
    """A container port of the Deployment's only container, by number or by name."""
    ports = {p["name"]: p["containerPort"] for p in container(manifests, deployment)["ports"]}
    if isinstance(port, int):
        assert port in ports.values(), f"{deployment} has no container port {port}"
        return port
    assert port in ports, f"{deployment} has no container port named {port}"
    return int(ports[port])


def _gateway_settings(
    manifests: tuple[Manifest, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> GatewaySettings:
    """The settings the gateway reads in the pod: its ConfigMap, with stand-ins for the files
    and the token that Secrets provide."""
    env = dict(config_map(manifests, "gateway-config")["data"])
    for variable in ("GATEWAY_TLS_CERT_FILE", "GATEWAY_TLS_KEY_FILE"):
        stand_in = tmp_path / PurePosixPath(env[variable]).name
        stand_in.write_text("PEM")
        env[variable] = str(stand_in)
    gateway = container(manifests, "gateway")
    if any(item["name"] == "GATEWAY_AUTH_TOKEN" for item in gateway.get("env", [])):
        env["GATEWAY_AUTH_TOKEN"] = "a-token"
    monkeypatch.delenv("GATEWAY_HOST", raising=False)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    return GatewaySettings.from_args([])


def test_each_new_group_offers_its_components_to_the_serving_overlays() -> None:
    assert set(component_choices("monitoring")) == {"monitoring/prometheus-operator"}
    assert set(component_choices("exposure")) == {
        "exposure/load-balancer",
        "exposure/gateway-api",
    }
    assert set(component_choices("autoscaling")) == {"autoscaling/keda"}
    for group in NEW_GROUPS:
        assert COMPONENT_GROUPS[group] == tuple(f"overlays/{name}" for name in OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("group", NEW_GROUPS)
def test_what_a_component_adds_lands_in_the_suites_namespace(overlay: str, group: str) -> None:
    # A component's own objects are not in the base, so its `namespace:` never reaches them.
    base = {(m["kind"], m["metadata"]["name"]) for m in render(f"overlays/{overlay}")}
    assert component_choices(group), f"k8s/components/{group}/ offers nothing"
    for component in component_choices(group):
        added = [
            m for m in _with(overlay, component) if (m["kind"], m["metadata"]["name"]) not in base
        ]
        assert added, component
        for manifest in added:
            where = f"{component}: {manifest['kind']} {manifest['metadata']['name']}"
            assert manifest["metadata"]["namespace"] == NAMESPACE, where
            assert manifest["metadata"]["labels"]["app.kubernetes.io/part-of"] == NAMESPACE, where


@pytest.mark.parametrize("kind", sorted(custom_resources.custom_kinds()))
def test_custom_resource_validation_refuses_a_field_its_kind_does_not_have(kind: str) -> None:
    rendered = [
        m
        for group in NEW_GROUPS
        for component in component_choices(group)
        for m in _with("cpu", component)
        if f"{m['apiVersion']}/{m['kind']}" == kind
    ]
    assert rendered, f"no component renders a {kind}: its schema checks nothing"
    manifest = copy.deepcopy(rendered[0])
    custom_resources.validate(manifest)
    # A misspelt field, as kubectl apply would pass it on for the API server to refuse.
    first = next(iter(manifest["spec"]))
    manifest["spec"][f"{first}s"] = manifest["spec"][first]
    with pytest.raises(jsonschema.ValidationError):
        custom_resources.validate(manifest)


def test_custom_resource_validation_refuses_a_wrong_type_deep_inside() -> None:
    monitor = copy.deepcopy(
        find(_with("cpu", "monitoring/prometheus-operator"), "PodMonitor", "gateway")
    )
    monitor["spec"]["podMetricsEndpoints"][0]["interval"] = "30 seconds"
    with pytest.raises(jsonschema.ValidationError):
        custom_resources.validate(monitor)
    scaled = copy.deepcopy(find(_with("cpu", "autoscaling/keda"), "ScaledObject", "gateway"))
    scaled["spec"]["triggers"][0]["metadata"]["threshold"] = 250  # KEDA reads strings only
    with pytest.raises(jsonschema.ValidationError):
        custom_resources.validate(scaled)


# -- monitoring/prometheus-operator -------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pod_monitors_scrape_what_each_pods_annotations_announce(overlay: str) -> None:
    manifests = _with(overlay, "monitoring/prometheus-operator")
    monitors = [m for m in manifests if m["kind"] == "PodMonitor"]
    scraped = [
        m
        for m in manifests
        if m["kind"] == "Deployment"
        and m["spec"]["template"]["metadata"].get("annotations", {}).get("prometheus.io/scrape")
        == "true"
    ]
    assert {d["metadata"]["name"] for d in scraped} == {"gateway", "tfserving"}
    for deployment in scraped:
        name = deployment["metadata"]["name"]
        labels = _pod_labels(manifests, name)
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        (monitor,) = [m for m in monitors if selects(m["spec"]["selector"], labels)]
        assert monitor["metadata"]["namespace"] == deployment["metadata"]["namespace"]
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        port = _container_port(manifests, name, endpoint["port"])
        assert port == int(annotations["prometheus.io/port"]), name
        assert endpoint["path"] == annotations["prometheus.io/path"], name
        # The `job` label the alerts select by.
        assert labels[monitor["spec"]["jobLabel"]] == name
        assert admits(manifests, NAMESPACE, labels, port, SCRAPER_NAMESPACE), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_tensorflow_serving_is_scraped_where_its_monitoring_config_serves(overlay: str) -> None:
    manifests = _with(overlay, "monitoring/prometheus-operator")
    text = config_map(manifests, "tfserving-config")["data"]["monitoring.config"]
    config = text_format.Parse(text, server_files_pb2.MonitoringConfig())
    assert config.prometheus_config.enable
    (endpoint,) = find(manifests, "PodMonitor", "tfserving")["spec"]["podMetricsEndpoints"]
    assert endpoint["path"] == config.prometheus_config.path
    args = container(manifests, "tfserving")["args"]
    assert f"--rest_api_port={_container_port(manifests, 'tfserving', endpoint['port'])}" in args


def test_the_alerts_cover_errors_latency_not_serving_and_the_batching_queue() -> None:
    manifests = _with("gpu", "monitoring/prometheus-operator")
    (rules,) = [m for m in manifests if m["kind"] == "PrometheusRule"]
    alerts = {r["alert"]: r for g in rules["spec"]["groups"] for r in g["rules"]}
    read: dict[str, set[str]] = {}
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        assert re.fullmatch(r"\d+m", rule["for"]), name
        for selector in promql.selectors(rule["expr"]):
            read.setdefault(selector.metric, set()).add(name)
    # What each concern is measured by.
    for metric in (
        "gateway_requests_total",  # error rates and models not serving
        "gateway_request_seconds_bucket",  # p99 latency
        "gateway_model_refresh_failures_total",  # the gateway cannot reach TensorFlow Serving
        ":tensorflow:serving:request_count",
        ":tensorflow:serving:request_latency_bucket",
        ":tensorflow:serving:batching_session:queuing_latency_bucket",
        "kube_pod_status_ready",  # a pod whose health check says NOT_SERVING
        "up",
    ):
        assert metric in read, f"no alert reads {metric}"


def test_error_rates_count_only_the_servers_failures() -> None:
    manifests = _with("gpu", "monitoring/prometheus-operator")
    counted = 0
    for where, expression in promql.expressions(manifests):
        for selector in promql.selectors(expression):
            for matcher in selector.matchers:
                if matcher.label in ("code", "status") and matcher.op == "=~":
                    codes = set(promql.alternatives(matcher.value))
                    assert codes <= STATUS_CODES, where
                    assert not codes & CLIENT_CODES, where
                    counted += 1
    assert counted == 2  # the gateway's and TensorFlow Serving's


def test_not_serving_alerts_match_the_pods_each_deployment_makes() -> None:
    manifests = _with("gpu", "monitoring/prometheus-operator")
    # A Deployment's pods are <deployment>-<pod template hash>-<5 characters>.
    pods = {name: f"{name}-7c9d8f6b5d-x2k4q" for name in ("gateway", "tfserving")}
    matched: dict[str, str] = {}
    for where, expression in promql.expressions(manifests):
        for selector in promql.selectors(expression):
            if selector.metric != "kube_pod_status_ready":
                continue
            matchers = {m.label: m for m in selector.matchers}
            assert matchers["namespace"].value == NAMESPACE, where
            assert matchers["condition"].value == "true", where
            pattern = matchers["pod"].value
            (deployment,) = [d for d, pod in pods.items() if re.fullmatch(pattern, pod)]
            # Not the other Deployment's pods, nor a pod of another workload that shares a prefix.
            assert not re.fullmatch(pattern, f"{deployment}-external-x2k4q"), where
            matched[deployment] = where
    assert set(matched) == set(pods)


# -- exposure/load-balancer -----------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_nothing_leaves_the_cluster_without_an_exposure_component(overlay: str) -> None:
    for manifest in render(f"overlays/{overlay}"):
        if manifest["kind"] == "Service":
            assert manifest["spec"].get("type", "ClusterIP") == "ClusterIP"
        assert manifest["kind"] not in ("Ingress", "GRPCRoute", "HTTPRoute")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_load_balancer_passes_tls_through_to_the_gateway_alone(
    overlay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = _with(overlay, "exposure/load-balancer")
    (balancer,) = [
        m for m in manifests if m["kind"] == "Service" and m["spec"].get("type") == "LoadBalancer"
    ]
    spec = balancer["spec"]
    gateway_labels = _pod_labels(manifests, "gateway")
    assert selects({"matchLabels": spec["selector"]}, gateway_labels)
    assert not selects({"matchLabels": spec["selector"]}, _pod_labels(manifests, "tfserving"))
    # The API port only: not health, not metrics.
    (port,) = spec["ports"]
    target = _container_port(manifests, "gateway", port["targetPort"])
    settings = _gateway_settings(manifests, tmp_path, monkeypatch)
    assert target == settings.port
    # Bytes pass through, so the gateway itself must speak TLS there and ask for the token.
    assert settings.tls_cert_file is not None and settings.tls_key_file is not None
    assert settings.auth_token is not None
    # The client's own address reaches the pod, and the NetworkPolicies let it in.
    assert spec["externalTrafficPolicy"] == "Local"
    client = Source.outside("203.0.113.7")
    assert admits(manifests, NAMESPACE, gateway_labels, target, client)
    for private in (settings.health_port, settings.metrics_port):
        assert not admits(manifests, NAMESPACE, gateway_labels, private, client)


# -- exposure/gateway-api -------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_grpc_route_sends_the_api_and_nothing_else_to_the_gateway(overlay: str) -> None:
    manifests = _with(overlay, "exposure/gateway-api")
    route = find(manifests, "GRPCRoute", "gateway")["spec"]
    (parent,) = route["parentRefs"]
    assert parent["kind"] == "Gateway" and parent["name"] and parent["namespace"]
    (rule,) = route["rules"]
    # Every method of the API, by name (Gateway API's core match), and no other service:
    # health checks and reflection stay inside the cluster.
    matched = {(m["method"]["service"], m["method"]["method"]) for m in rule["matches"]}
    assert matched == {(API.full_name, method.name) for method in API.methods}
    (backend,) = rule["backendRefs"]
    assert (backend["group"], backend["kind"]) == ("", "Service")
    service = find(manifests, "Service", backend["name"])
    (service_port,) = [p for p in service["spec"]["ports"] if p["port"] == backend["port"]]
    assert selects({"matchLabels": service["spec"]["selector"]}, _pod_labels(manifests, "gateway"))
    assert _container_port(manifests, "gateway", service_port["targetPort"]) == 50051


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_api_hop_to_the_gateway_is_tls_checked_against_the_suites_ca(
    overlay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = _with(overlay, "exposure/gateway-api")
    (backend,) = find(manifests, "GRPCRoute", "gateway")["spec"]["rules"][0]["backendRefs"]
    policy = find(manifests, "BackendTLSPolicy", "gateway")["spec"]
    (target,) = policy["targetRefs"]
    assert (target["group"], target["kind"], target["name"]) == ("", "Service", backend["name"])
    service = find(manifests, "Service", target["name"])
    named = {p["name"]: p for p in service["spec"]["ports"]}
    assert named[target["sectionName"]]["port"] == backend["port"]
    # The name the gateway's certificate carries (README: Deploy), under the suite's CA, from
    # the ConfigMap kind that every implementation reads.
    validation = policy["validation"]
    assert validation["hostname"] == f"{service['metadata']['name']}.{NAMESPACE}.svc"
    assert validation["caCertificateRefs"] == [
        {"group": "", "kind": "ConfigMap", "name": "gateway-ca"}
    ]
    # The gateway answers only TLS there, so a Gateway that skipped the policy fails closed.
    settings = _gateway_settings(manifests, tmp_path, monkeypatch)
    port = _container_port(manifests, "gateway", named[target["sectionName"]]["targetPort"])
    assert port == settings.port and settings.tls_cert_file is not None
    # The Gateway's proxies run in a namespace of their own, with labels the suite can't know.
    proxy = Source.pod_in("gateway-system", **{"app.kubernetes.io/name": "envoy"})
    assert admits(manifests, NAMESPACE, _pod_labels(manifests, "gateway"), port, proxy)


# -- autoscaling/keda -----------------------------------------------------------------------


def _in_flight_gauge() -> str:
    (family,) = GatewayMetrics().requests_in_flight.collect()
    assert family.type == "gauge"
    return str(family.name)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_scales_the_gateway_on_rpcs_in_flight_and_on_cpu(overlay: str) -> None:
    before = render(f"overlays/{overlay}")
    autoscaler = find(before, "HorizontalPodAutoscaler", "gateway")["spec"]
    manifests = _with(overlay, "autoscaling/keda")
    # KEDA makes its own HorizontalPodAutoscaler; a second one would fight it.
    assert not [m for m in manifests if m["kind"] == "HorizontalPodAutoscaler"]
    spec = find(manifests, "ScaledObject", "gateway")["spec"]
    target = spec["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
    assert "replicas" not in find(manifests, "Deployment", target["name"])["spec"]
    # The overlay's bounds and scale-down behaviour carry over.
    assert spec["minReplicaCount"] == autoscaler["minReplicas"]
    assert spec["maxReplicaCount"] == autoscaler["maxReplicas"]
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == autoscaler["behavior"]

    triggers = {trigger["type"]: trigger for trigger in spec["triggers"]}
    assert set(triggers) == {"prometheus", "cpu"}
    (cpu_target,) = autoscaler["metrics"]
    assert triggers["cpu"]["metricType"] == "Utilization"
    assert (
        int(triggers["cpu"]["metadata"]["value"])
        == (cpu_target["resource"]["target"]["averageUtilization"])
    )
    in_flight = triggers["prometheus"]
    (selector,) = promql.selectors(in_flight["metadata"]["query"])
    assert selector.metric == _in_flight_gauge()
    assert [(m.label, m.value) for m in selector.matchers] == [("namespace", NAMESPACE)]
    # Per pod, and well below where a pod starts refusing calls.
    assert in_flight["metricType"] == "AverageValue"
    most = int(config_map(manifests, "gateway-config")["data"]["GATEWAY_MAX_CONCURRENT_RPCS"])
    assert 0 < float(in_flight["metadata"]["threshold"]) <= most / 2
