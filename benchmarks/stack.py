"""The suite as deployed, in processes of its own: a model server with all five models and
batching on, and gateways in front, started and timed until they serve; with the helpers that
the benchmarks and the tests share to start, measure and address such processes."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.suite.children import Child
from services.suite.model_config import model_config_text
from training.jobs import JOBS

START_TIMEOUT_S = 300
# TensorFlow Serving's advice for CPUs, as the k8s base deploys it: no timeout (a lone request
# runs at once; batches form while the batch threads are busy). But one batch thread, not one per
# core: a batch's session run already spreads over every core (TensorFlow's intra-op pool), and
# this server's event loop, which parses every request, needs a core too. With a second batch
# thread free, the next request to arrive runs alone: on 2 cores, CNN batches at 32 outstanding
# averaged 2.7 requests with two threads and 5 to 9 with one, at a quarter less CPU a request.
BATCHING_PARAMETERS = """\
max_batch_size { value: 64 }
batch_timeout_micros { value: 0 }
max_enqueued_batches { value: 100 }
num_batch_threads { value: 1 }
"""


@dataclass
class Started:
    child: Child
    port: int
    seconds_to_serving: float
    rest_port: int | None = None  # the model server's REST API


@dataclass
class ServingStack:
    model_server: Started
    gateways: dict[str, Started] = field(default_factory=dict)


@contextlib.contextmanager
def serving_stack(
    models_dir: Path, work_dir: Path, gateways: Mapping[str, Sequence[str]]
) -> Iterator[ServingStack]:
    """A model server for all five models, then one gateway per entry of ``gateways`` (name:
    extra flags), each started in turn and timed from its start until it serves them all."""
    config = work_dir / "all-models.config"
    config.write_text(model_config_text(models_dir, list(JOBS)))
    parameters = work_dir / "stack-batching.config"
    parameters.write_text(BATCHING_PARAMETERS)
    children: list[Child] = []
    try:
        started = time.perf_counter()
        rest_port = free_port()
        model_server = Child(
            "modelserver",
            "services.modelserver",
            [
                *model_server_flags(config, parameters),
                "--enable_grpc_healthcheck_service",
                f"--rest_api_port={rest_port}",
            ],
        )
        children.append(model_server)
        port = model_server.wait_for_port(START_TIMEOUT_S)
        _wait_for_all_models(port)
        stack = ServingStack(Started(model_server, port, time.perf_counter() - started, rest_port))
        for name, flags in gateways.items():
            started = time.perf_counter()
            gateway = Child(
                f"gateway ({name})",
                "services.gateway",
                [
                    "--port=0",
                    f"--model_server=localhost:{port}",
                    "--metrics_port=0",
                    "--log_level=WARNING",
                    *flags,
                ],
            )
            children.append(gateway)
            gateway_port = gateway.wait_for_port(START_TIMEOUT_S)
            _wait_for_gateway(gateway_port)
            stack.gateways[name] = Started(gateway, gateway_port, time.perf_counter() - started)
        yield stack
    finally:
        for child in reversed(children):
            child.stop(timeout_s=15)


def memory_mib(pid: int, field: str) -> float:
    """A memory line of /proc/<pid>/status (VmRSS: now; VmHWM: the peak), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


@contextlib.contextmanager
def started_child(name: str, module: str, flags: Sequence[str]) -> Iterator[Started]:
    """``python -m module flags`` in a process of its own, timed from its start until it
    listens; stopped when the block ends."""
    started = time.perf_counter()
    child = Child(name, module, flags)
    try:
        port = child.wait_for_port(START_TIMEOUT_S)
        yield Started(child, port, time.perf_counter() - started)
    finally:
        child.stop(timeout_s=15)


def cpu_seconds(pid: int) -> float:
    """The CPU time a process has used so far, user and system, all its threads (utime and
    stime of /proc/<pid>/stat), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name, in parentheses, may hold spaces: the fields after it start at field 3.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def model_server_flags(config: Path, batching_parameters: Path | None = None) -> list[str]:
    """A model server on a free port for a models.config, without polling for new versions
    (nothing is published while it is measured), with batching when given its parameters."""
    flags = ["--port=0", f"--model_config_file={config}", "--file_system_poll_wait_seconds=0"]
    if batching_parameters is not None:
        flags += ["--enable_batching", f"--batching_parameters_file={batching_parameters}"]
    return flags


def cpu_clock(*pids: int) -> Callable[[], float]:
    """The CPU time these processes have used so far together, in seconds: a clock for
    harness.alternate's ``cpu_clocks``, where a path has more than one server."""
    return lambda: sum(cpu_seconds(pid) for pid in pids)


def free_port() -> int:
    """A port nobody listens on now (TensorFlow Serving's --rest_api_port=0 means no REST)."""
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return int(probe.getsockname()[1])


def _wait_for_all_models(port: int) -> None:
    """Until the model server's overall health is SERVING: every configured model is loaded."""
    deadline = time.monotonic() + START_TIMEOUT_S
    with grpc.insecure_channel(f"localhost:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            answer = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            if answer.status == health_pb2.HealthCheckResponse.SERVING:
                return
            time.sleep(0.05)
    raise TimeoutError(f"the model server did not serve all five models in {START_TIMEOUT_S} s")


def _wait_for_gateway(port: int) -> None:
    """Until the gateway lists a serving version of every model."""
    deadline = time.monotonic() + START_TIMEOUT_S
    with grpc.insecure_channel(f"localhost:{port}") as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        while time.monotonic() < deadline:
            try:
                response = stub.ListModels(gateway_pb2.ListModelsRequest(), timeout=5)
            except grpc.RpcError:
                response = gateway_pb2.ListModelsResponse()
            if {m.name for m in response.models if m.serving_version > 0} >= set(JOBS):
                return
            time.sleep(0.05)
    raise TimeoutError(f"the gateway did not serve all five models in {START_TIMEOUT_S} s")
