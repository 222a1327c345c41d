"""The alerts and the autoscaler read metrics the servers really export. The model server and the
gateway run on ephemeral ports with the cpu overlay's TensorFlow Serving config files, answer
calls, have their model server go away, and are scraped where the PodMonitors scrape them;
every series selector in the rendered PrometheusRule and ScaledObject must then name a scraped
metric, by labels it carries, with values it can take."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import aiohttp
import grpc
import promql
import pytest
from network_policy import selects
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from rendered import Manifest, config_map, find, render
from servers import POLL_S, start_model_server_for
from sklearn.datasets import load_wine

from benchmarks.stack import free_port
from services.gateway.server import start_gateway
from services.gateway.settings import GatewaySettings
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc

pytestmark = pytest.mark.asyncio(loop_scope="session")

NAMESPACE = "tf-serving-suite"
# Labels Prometheus gives every series it scrapes through a PodMonitor.
TARGET_LABELS = {"namespace", "pod", "job", "container", "endpoint", "instance"}
# Series from elsewhere in a Prometheus Operator stack, not from the suite's servers, and
# their labels: Prometheus' own, one per scrape target, and kube-state-metrics', one per pod
# and condition.
ELSEWHERE = {
    "up": TARGET_LABELS,
    "kube_pod_status_ready": {"namespace", "pod", "uid", "condition"},
}
API_METHODS = {
    method.name for method in gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].methods
}
STATUS_CODES = {code.name for code in grpc.StatusCode}

Series = dict[str, list[dict[str, str]]]


async def test_every_metric_the_alerts_and_the_autoscaler_read_is_exported(
    classifier_repository: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = render("overlays/cpu", ("monitoring/prometheus-operator", "autoscaling/keda"))
    files = config_map(manifests, "tfserving-config")["data"]
    for name in ("monitoring.config", "batching.config"):
        (tmp_path / name).write_text(files[name])
    paths = {
        job: find(manifests, "PodMonitor", job)["spec"]["podMetricsEndpoints"][0]["path"]
        for job in ("gateway", "tfserving")
    }

    model_server = await start_model_server_for(
        classifier_repository,
        rest_api_port=free_port(),
        enable_batching=True,
        batching_parameters_file=str(tmp_path / "batching.config"),
        monitoring_config_file=str(tmp_path / "monitoring.config"),
    )
    monkeypatch.delenv("GATEWAY_HOST", raising=False)
    gateway = await start_gateway(
        GatewaySettings(
            port=0,
            model_server=f"localhost:{model_server.port}",
            model_refresh_s=POLL_S,
            metrics_port=0,
            backend_timeout_s=5.0,
        )
    )
    try:
        async with grpc.aio.insecure_channel(f"localhost:{gateway.port}") as channel:
            stub = gateway_pb2_grpc.GatewayServiceStub(channel)
            request = gateway_pb2.ClassifyRequest()
            request.samples.add().ordered.values.extend(load_wine().data[0].tolist())
            await stub.Classify(request, timeout=10)
        serving = await _scrape(f"http://localhost:{model_server.rest_port}{paths['tfserving']}")
        # Without its model server the gateway counts failed refreshes.
        await model_server.stop(0)
        await _refreshes_fail(gateway.metrics.registry)
        gateway_series = await _scrape(f"http://localhost:{gateway.metrics_port}{paths['gateway']}")
    finally:
        await gateway.stop(0)
        await model_server.stop(0)

    series: Series = {**serving, **gateway_series}
    jobs = _jobs(manifests)
    checked = 0
    for where, expression in promql.expressions(manifests):
        for selector in promql.selectors(expression):
            _check_selector(where, selector, series, jobs)
            checked += 1
        for grouping in promql.groupings(expression):
            _check_grouping(where, grouping, series)
    assert checked >= 15


def _jobs(manifests: tuple[Manifest, ...]) -> set[str]:
    """The `job` label of each PodMonitor's series: the value of its jobLabel on its pods."""
    jobs = set()
    for monitor in (m for m in manifests if m["kind"] == "PodMonitor"):
        for deployment in (m for m in manifests if m["kind"] == "Deployment"):
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            if selects(monitor["spec"]["selector"], labels):
                jobs.add(labels[monitor["spec"]["jobLabel"]])
    return jobs


def _check_selector(where: str, selector: promql.Selector, series: Series, jobs: set[str]) -> None:
    if selector.metric in ELSEWHERE:
        for matcher in selector.matchers:
            assert matcher.label in ELSEWHERE[selector.metric], f"{where}: {matcher}"
            if matcher.label == "job":
                assert set(promql.alternatives(matcher.value)) <= jobs, where
        return
    assert selector.metric in series, f"{where}: no server exports {selector.metric}"
    scraped = series[selector.metric]
    carried = {label for labels in scraped for label in labels}
    for matcher in selector.matchers:
        label, op, value = matcher.label, matcher.op, matcher.value
        what = f"{where}: {selector.metric}{{{label}{op}{value!r}}}"
        assert label in carried | TARGET_LABELS, f"{what}: no such label"
        if label == "namespace":
            assert (op, value) == ("=", NAMESPACE), what
            continue
        names = promql.alternatives(value) if op in ("=~", "!~") else [value]
        # Values from a closed set are checked against the set; others must have been seen.
        if label in ("code", "status"):
            assert set(names) <= STATUS_CODES, what
        elif label == "rpc":
            assert set(names) <= API_METHODS, what
        elif op in ("=", "=~"):
            seen = {labels.get(label) for labels in scraped}
            assert seen & set(names), f"{what}: never seen; the values were {sorted(seen)}"


def _check_grouping(where: str, grouping: promql.Grouping, series: Series) -> None:
    ours = [s for s in grouping.selectors if s.metric not in ELSEWHERE]
    carried = {
        label for selector in ours for labels in series.get(selector.metric, []) for label in labels
    }
    for label in grouping.labels:
        assert label in carried | TARGET_LABELS, f"{where}: groups by {label}, which is not there"


async def _scrape(url: str) -> Series:
    """Every sample's labels, by sample name (a histogram's _bucket, _sum and _count apart)."""
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200, url
        text = await response.text()
    # The parser renames a counter's samples to OpenMetrics' `<name>_total`, which TensorFlow
    # Serving's counters lack; Prometheus stores the names as written. Read untyped, they stay.
    untyped = "\n".join(line for line in text.splitlines() if not line.startswith("# TYPE "))
    found: Series = defaultdict(list)
    for family in text_string_to_metric_families(untyped):
        for sample in family.samples:
            found[sample.name].append(dict(sample.labels))
    return dict(found)


async def _refreshes_fail(registry: CollectorRegistry) -> None:
    for _ in range(100):
        labels = {"reason": "unreachable"}
        if registry.get_sample_value("gateway_model_refresh_failures_total", labels):
            return
        await asyncio.sleep(POLL_S)
    raise AssertionError("the gateway never counted a failed refresh")
