"""`make run`: run model server and gateway over the local model repository, training each
model that has no version yet.

The services start as soon as one model has a version; the others train meanwhile, and each
joins the running model server through a config reload as its first version is published, as
TensorFlow Serving allows (the model server, like TensorFlow Serving, listens only once the
models its config names have loaded). Until then, the gateway answers a call to one UNAVAILABLE,
saying that it is still training.

Both services run as child processes on the documented ports (8500 and 50051 unless told
otherwise). One that dies is restarted on its ports, after a pause of 1 s doubling to 30 s while
it keeps dying, and the other keeps running; Ctrl-C or SIGTERM stops both cleanly, the gateway
first so that it drains.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, CliApp, SettingsConfigDict

from services.suite.children import ChildFailed
from services.suite.model_config import (
    METRICS_PATH,
    reload_model_config,
    write_model_config,
    write_monitoring_config,
)
from services.suite.supervisor import Supervised
from services.suite.trainer import Trainer, TrainingFailed
from training.jobs import JOBS

# What a call to a model still training is told (after "model cnn has no available version").
STILL_TRAINING_NOTE = "make run is still training it and serves it once its first version is out"

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
    models: list[str] = Field(
        default_factory=lambda: list(JOBS),
        min_length=1,
        description=f"the models to serve, comma-separated (default: all of {','.join(JOBS)})",
    )
    start_timeout_s: float = Field(180.0, gt=0, description="time each service gets to start")
    log_level: str = Field(
        "WARNING",
        pattern=r"(?i)^(debug|info|warning|error)$",
        description="the services' log level: WARNING shows warnings and errors as they come, "
        "INFO every load and version switch too, DEBUG the gateway's access lines as well",
    )

    @field_validator("models")
    @classmethod
    def _known_models(cls, models: list[str]) -> list[str]:
        unknown = [name for name in models if name not in JOBS]
        if unknown:
            raise ValueError(f"no model named {unknown[0]!r}; the suite has {', '.join(JOBS)}")
        return list(dict.fromkeys(models))  # each once, in the order given


def main(argv: Sequence[str] | None = None) -> int:
    settings = CliApp.run(SuiteSettings, cli_args=None if argv is None else list(argv))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    models_dir = settings.models_dir.resolve()
    trainer = Trainer(models_dir, settings.train_profile, settings.models)
    stop_requested = threading.Event()

    def request_stop(_signum: int, _frame: object) -> None:
        stop_requested.set()
        trainer.stop()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    try:
        if len(trainer.pending) == len(settings.models):  # nothing to serve yet
            trainer.train_next()
    except TrainingFailed as exc:
        print(f"suite did not start: {exc}", file=sys.stderr)
        return 0 if stop_requested.is_set() else 1
    served = [name for name in settings.models if name not in trainer.pending]
    model_config = write_model_config(models_dir, served)
    monitoring_config = write_monitoring_config(models_dir)

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
                f"--log_level={settings.log_level}",
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
                f"--unserved_model_note={STILL_TRAINING_NOTE}",
                f"--log_level={settings.log_level}",
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
        print(_banner(ports, models_dir, trainer.pending), flush=True)

        def serve(name: str) -> None:
            served.append(name)
            target = f"localhost:{modelserver_port}"
            failure = reload_model_config(target, models_dir, served, settings.start_timeout_s)
            print(f"{name} could not be served: {failure}" if failure else f"{name} is served",
                  flush=True)  # fmt: skip

        # The others train while the first ones serve, each added to the model server as
        # its first version is published.
        trainer.train_rest_in_background(serve)
        # A child that dies is restarted on its own; the other one keeps serving.
        while not stop_requested.wait(0.5):
            for service in services:
                service.supervise()
        return 0
    except (ChildFailed, grpc.RpcError) as exc:
        print(f"suite failed to start: {exc}", file=sys.stderr)
        return 1
    finally:
        trainer.stop()
        for service in reversed(services):  # the gateway first, so that it drains
            service.stop(timeout_s=15)
        print("suite stopped")


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


def _banner(ports: _BannerPorts, models_dir: Path, training: Sequence[str]) -> str:
    gateway_port = ports.gateway
    still_training = _still_training(training)
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

{still_training}Publish new versions with `make train` while this runs (the full profile, about
14 minutes): each is served within seconds of its model's training ending.
Press Ctrl-C to stop.
"""


def _still_training(names: Sequence[str]) -> str:
    if not names:
        return ""
    return (
        f"Still training {', '.join(names)}:\n"
        "each is served once its first version is out; until then its calls get UNAVAILABLE.\n"
    )


if __name__ == "__main__":
    sys.exit(main())
