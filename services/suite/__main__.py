"""`make run`: train each model that has no version yet, then run model server and gateway.

Both services run as child processes on the documented ports (8500 and 50051 unless told
otherwise). One that dies is restarted on its ports, after a pause of 1 s doubling to 30 s while
it keeps dying, and the other keeps running; Ctrl-C or SIGTERM stops both cleanly, the gateway
first so that it drains.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import Field
from pydantic_settings import BaseSettings, CliApp, SettingsConfigDict

from services.suite.children import ChildFailed
from services.suite.model_config import (
    METRICS_PATH,
    write_model_config,
    write_monitoring_config,
)
from services.suite.noise import without_startup_noise
from services.suite.supervisor import Supervised
from training.jobs import JOBS
from training.publish import latest_version

_RUN_COUNT = re.compile(r"^\[\d+/\d+\]")
_WINE_ROW_0 = "14.23,1.71,2.43,15.6,127,2.8,3.06,0.28,2.29,5.64,1.04,3.92,1065"
_GRPCURL_SAMPLE = '{"samples":[{"ordered":{"values":[' + _WINE_ROW_0 + "]}}]}"


class SuiteSettings(BaseSettings):
    """Where the local suite keeps its models and which ports it uses."""

    model_config = SettingsConfigDict(
        env_prefix="SUITE_", cli_prog_name="python -m services.suite", cli_implicit_flags=False
    )

    models_dir: Path = Field(Path("models"), description="model repository: <name>/<version>/")
    modelserver_port: int = Field(8500, ge=0, description="model server gRPC port; 0: any free")
    modelserver_rest_port: int = Field(
        8501, ge=0, description="model server REST and Prometheus port; 0: no REST API"
    )
    gateway_port: int = Field(50051, ge=0, description="gateway gRPC port; 0: any free")
    metrics_port: int = Field(9090, ge=0, description="gateway's Prometheus port; 0: any free")
    poll_s: float = Field(1.0, gt=0, description="how often the model server looks for versions")
    train_profile: str = Field("quick", description="training profile when no version exists")
    start_timeout_s: float = Field(180.0, gt=0, description="time each service gets to start")


def main(argv: Sequence[str] | None = None) -> int:
    settings = CliApp.run(SuiteSettings, cli_args=None if argv is None else list(argv))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    models_dir = settings.models_dir.resolve()
    train_missing(models_dir, settings.train_profile)
    model_config = write_model_config(models_dir, list(JOBS))
    monitoring_config = write_monitoring_config(models_dir)

    stop_requested = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda _sig, _frame: stop_requested.set())
    services: list[Supervised] = []
    try:
        modelserver = Supervised(
            "model server",
            "services.modelserver",
            [
                f"--model_config_file={model_config}",
                f"--file_system_poll_wait_seconds={settings.poll_s}",
                "--enable_grpc_healthcheck_service=true",
                f"--rest_api_port={settings.modelserver_rest_port}",
                f"--monitoring_config_file={monitoring_config}",
            ],
            ports={"port": settings.modelserver_port},
        )
        services.append(modelserver)
        modelserver_port = modelserver.start(settings.start_timeout_s)["port"]
        gateway = Supervised(
            "gateway",
            "services.gateway",
            [
                f"--model_server=localhost:{modelserver_port}",
                # A terminal, not a log pipeline, reads the local suite's logs.
                "--log_format=text",
            ],
            ports={"port": settings.gateway_port, "metrics_port": settings.metrics_port},
        )
        services.append(gateway)
        gateway_ports = gateway.start(settings.start_timeout_s)
        gateway_port = gateway_ports["port"]
        _wait_until_serving(f"localhost:{gateway_port}", settings.start_timeout_s)
        ports = _BannerPorts(
            gateway_port,
            gateway_ports["metrics_port"],
            modelserver_port,
            settings.modelserver_rest_port,
        )
        print(_banner(ports, models_dir), flush=True)
        # A child that dies is restarted on its own; the other one keeps serving.
        while not stop_requested.wait(0.5):
            for service in services:
                service.supervise()
        return 0
    except (ChildFailed, grpc.RpcError) as exc:
        print(f"suite failed to start: {exc}", file=sys.stderr)
        return 1
    finally:
        for service in reversed(services):  # the gateway first, so that it drains
            service.stop(timeout_s=15)
        print("suite stopped")


def train_missing(models_dir: Path, profile: str, names: Sequence[str] = tuple(JOBS)) -> None:
    """Trains, one after another, the models without a version: a line as each starts and one
    as it is published, with what went wrong in full if a run fails."""
    missing = [name for name in names if latest_version(models_dir / name) is None]
    for position, name in enumerate(missing, start=1):
        print(f"No {name} version in {models_dir}: training one ({profile} profile)", flush=True)
        run = subprocess.run(
            [sys.executable, "-m", "training", name, "--profile", profile,
             "--models-dir", str(models_dir), "--keras-verbose", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        output = list(without_startup_noise(run.stdout.splitlines(keepends=True)))
        if run.returncode != 0:
            sys.stdout.writelines(output)
            raise subprocess.CalledProcessError(run.returncode, run.args)
        # The job's own last line, "[1/1] cnn  24 s  accuracy 0.983 ...", counted among all.
        summary = output[-1] if output else f"[1/1] {name} published\n"
        print(_RUN_COUNT.sub(f"[{position}/{len(missing)}]", summary, count=1), end="", flush=True)


def _wait_until_serving(target: str, timeout_s: float) -> None:
    """Blocks until the gateway's health service reports SERVING (it follows the model server)."""
    with grpc.insecure_channel(target) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=""), timeout=timeout_s, wait_for_ready=True
        )
        for response in watch:
            if response.status == health_pb2.HealthCheckResponse.SERVING:
                watch.cancel()
                return


@dataclass(frozen=True)
class _BannerPorts:
    gateway: int
    gateway_metrics: int
    modelserver: int
    modelserver_rest: int  # 0: no REST API


def _banner(ports: _BannerPorts, models_dir: Path) -> str:
    gateway_port = ports.gateway
    rest = (
        f"""  model server REST API                     http://localhost:{ports.modelserver_rest}/v1/models/classifier
  model server metrics                      http://localhost:{ports.modelserver_rest}{METRICS_PATH}
"""
        if ports.modelserver_rest
        else ""
    )
    return f"""
The suite is up.
  gateway (gateway.v1.GatewayService)       localhost:{gateway_port}
  gateway metrics                           http://localhost:{ports.gateway_metrics}/metrics
  model server (tensorflow.serving.*)       localhost:{ports.modelserver}
{rest}  model repository                          {models_dir}

Try it:
  .venv/bin/python -m services.client --target localhost:{gateway_port} classify --wine-row 0
  .venv/bin/python -m services.client --target localhost:{gateway_port} list-models
  grpcurl -plaintext localhost:{gateway_port} list
  grpcurl -plaintext -d '{_GRPCURL_SAMPLE}' \\
    localhost:{gateway_port} gateway.v1.GatewayService/Classify

Publish new versions with `make train` while this runs (the full profile, about 14 minutes):
each is served within seconds of its model's training ending.
Press Ctrl-C to stop.
"""


if __name__ == "__main__":
    sys.exit(main())
