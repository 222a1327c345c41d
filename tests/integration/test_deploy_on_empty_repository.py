"""The cpu overlay deployed before any model is trained, run the way its pods run: the same
commands, arguments, config files and environment, with the test's ports and folders in place
of the pod's. Kubelet's probes are asked as kubelet asks them. Nothing crash-loops: the gateway
lives (not ready) with no model server, TensorFlow Serving's pod waits in its init container,
and both turn ready once the models are published."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rendered import Manifest, config_map, container, find, render
from sklearn.datasets import load_wine

from benchmarks.stack import free_port
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from training.jobs import JOBS

pytestmark = pytest.mark.asyncio(loop_scope="session")

POD_MODELS = "/models/"
POD_CONFIG = "/etc/tfserving/"
TOKEN = "a-token-from-the-secret"
START_S = 240.0
# How long the test watches a state that must last: long enough for a probe to be asked
# several times, far shorter than the waits it stands for (training takes hours).
WATCH_S = 6.0


class Pod:
    """Processes run as one of the pod's containers, with its ports mapped to local ones."""

    def __init__(self, ports: Mapping[str | int, int]) -> None:
        self.ports = ports
        self.processes: list[subprocess.Popen[bytes]] = []

    def run(self, command: list[str], env: Mapping[str, str] | None = None) -> Any:
        process = subprocess.Popen(
            command,
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            process_group=0,
        )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    async def probe_passes(self, probe: Manifest) -> bool:
        """One probe as kubelet runs it: an HTTP GET answered 2xx/3xx, or a gRPC health check
        of the whole server answered SERVING, within the probe's timeout."""
        timeout = probe.get("timeoutSeconds", 1)
        if "httpGet" in probe:
            get = probe["httpGet"]
            url = f"http://127.0.0.1:{self.ports[get['port']]}{get['path']}"
            try:
                with await asyncio.to_thread(urllib.request.urlopen, url, timeout=timeout) as r:
                    return 200 <= r.status < 400
            except OSError:
                return False
        port = self.ports[probe["grpc"]["port"]]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            try:
                answer = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=probe["grpc"].get("service", "")),
                    timeout=timeout,
                )
            except grpc.aio.AioRpcError:
                return False
            return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    async def passes_within(self, probe: Manifest, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if await self.probe_passes(probe):
                return True
            await asyncio.sleep(0.5)
        return False

    async def never_passes(self, probe: Manifest, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if await self.probe_passes(probe):
                return False
            await asyncio.sleep(0.5)
        return True


@pytest.fixture
def manifests() -> tuple[Manifest, ...]:
    return render("overlays/cpu")


@pytest.fixture
def pods() -> Iterator[list[Pod]]:
    started: list[Pod] = []
    yield started
    for pod in started:
        pod.stop()


def _tfserving_files(manifests: tuple[Manifest, ...], root: Path) -> tuple[Path, Path]:
    """The pod's /etc/tfserving and /models, as folders under `root`."""
    config_dir, repository = root / "etc-tfserving", root / "models"
    config_dir.mkdir()
    repository.mkdir()
    for name, text in config_map(manifests, "tfserving-config")["data"].items():
        (config_dir / name).write_text(text.replace(f'"{POD_MODELS}', f'"{repository}/'))
    return config_dir, repository


def _in_test_folders(argument: str, config_dir: Path) -> str:
    return argument.replace(POD_CONFIG, f"{config_dir}/")


def _publish(source: Path, repository: Path, name: str) -> None:
    """Publishes a model's version as training does: a hidden copy renamed into place."""
    (version,) = [path for path in (source / name).iterdir() if path.name.isdigit()]
    staging = repository / name / f".{version.name}.tmp"
    shutil.copytree(version, staging)
    staging.rename(repository / name / version.name)


async def test_deployed_before_training_every_pod_waits_and_then_serves(
    manifests: tuple[Manifest, ...], pods: list[Pod], full_models_dir: Path, tmp_path: Path
) -> None:
    config_dir, repository = _tfserving_files(manifests, tmp_path)
    bin_dir = Path(sys.executable).parent

    # The gateway, with its ConfigMap and Secret, in front of where TensorFlow Serving will be.
    serving_ports = {"grpc": free_port(), "http": free_port()}
    serving_ports |= {8500: serving_ports["grpc"], 8501: serving_ports["http"]}
    gateway_box = container(manifests, "gateway")
    gateway_ports = {"grpc": free_port(), "health": free_port(), "metrics": free_port()}
    gateway_ports |= {8086: gateway_ports["health"]}
    env = {
        name: value
        for name, value in config_map(manifests, "gateway-config")["data"].items()
        if not name.startswith("GATEWAY_TLS_")  # TLS has tests of its own; probes skip it
    }
    env |= {
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(gateway_ports["grpc"]),
        "GATEWAY_HEALTH_PORT": str(gateway_ports["health"]),
        "GATEWAY_METRICS_PORT": str(gateway_ports["metrics"]),
        # The pod resolves the headless Service; here TensorFlow Serving is one local port.
        "GATEWAY_MODEL_SERVER": f"ipv4:127.0.0.1:{serving_ports['grpc']}",
        "GATEWAY_AUTH_TOKEN": TOKEN,
    }
    gateway_pod = Pod(gateway_ports)
    pods.append(gateway_pod)
    gateway = gateway_pod.run([str(bin_dir / "gateway")], env)

    # Started and alive without a model server, so kubelet never restarts it; not ready.
    assert await gateway_pod.passes_within(gateway_box["startupProbe"], START_S)
    assert await gateway_pod.never_passes(gateway_box["readinessProbe"], WATCH_S)
    assert await gateway_pod.probe_passes(gateway_box["livenessProbe"])

    # TensorFlow Serving's container alone, on the empty repository: it never listens, so its
    # startupProbe would fail until kubelet killed it, and again after every restart.
    serving_box = container(manifests, "tfserving")
    serving_command = [
        str(bin_dir / serving_box["command"][0]),
        *(_in_test_folders(arg, config_dir) for arg in serving_box["args"]),
    ]
    serving_command = [
        f"--port={serving_ports['grpc']}"
        if arg.startswith("--port=")
        else f"--rest_api_port={serving_ports['http']}"
        if arg.startswith("--rest_api_port=")
        else arg
        for arg in serving_command
    ]
    serving_pod = Pod(serving_ports)
    pods.append(serving_pod)
    alone = serving_pod.run(serving_command)
    assert await serving_pod.never_passes(serving_box["startupProbe"], WATCH_S)
    alone.kill()
    alone.wait()

    # With the pod's init container first, as the Deployment runs them: it waits for every
    # model, however long training takes, without failing.
    pod_spec = find(manifests, "Deployment", "tfserving")["spec"]["template"]["spec"]
    (init_box,) = pod_spec["initContainers"]
    init = serving_pod.run([_in_test_folders(arg, config_dir) for arg in init_box["command"]])
    *first, last = list(JOBS)
    for name in first:
        _publish(full_models_dir, repository, name)
    await asyncio.sleep(WATCH_S)
    assert init.poll() is None, "the init container ended before every model had a version"

    _publish(full_models_dir, repository, last)
    assert await asyncio.to_thread(init.wait, START_S) == 0

    serving_pod.run(serving_command)
    assert await serving_pod.passes_within(serving_box["startupProbe"], START_S)
    assert await serving_pod.probe_passes(serving_box["readinessProbe"])
    assert await gateway_pod.passes_within(gateway_box["readinessProbe"], START_S)

    # The same gateway process throughout, now answering.
    assert gateway.poll() is None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway_ports['grpc']}") as channel:
        request = gateway_pb2.ClassifyRequest()
        request.samples.add().ordered.values.extend(load_wine().data[0].tolist())
        response = await gateway_pb2_grpc.GatewayServiceStub(channel).Classify(
            request, timeout=30, metadata=(("authorization", f"Bearer {TOKEN}"),)
        )
    assert response.model.name == "classifier" and len(response.classifications) == 1
