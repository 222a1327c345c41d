"""The model server's config files for the local model repository, in TF Serving's format, and
the reload that hands a running model server a new list of models.

Written with the suite's own copies of TensorFlow Serving's messages (protos/tfserving), so that
the launcher does not load TensorFlow just to write a file and make one call."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import grpc
from google.protobuf import text_format

from services.gateway.model_server_api import MODEL_SERVICE
from services.generated.tfserving.v1 import model_management_pb2

CONFIG_FILE_NAME = "models.config"
MONITORING_FILE_NAME = "monitoring.config"
METRICS_PATH = "/monitoring/prometheus/metrics"
# Every model keeps its previous version loaded. Replicas see a new version at different times,
# and a version is safe to route to only once every replica holds it (services/gateway/fleet.py):
# meanwhile the previous one, still on all of them, serves. A forecast, which spans many
# model-server calls, also finishes on the version it started on after a rollout.
VERSIONS_KEPT = 2


def model_server_config(
    models_dir: Path, names: Sequence[str]
) -> model_management_pb2.ModelServerConfig:
    """A ModelServerConfig serving each named model from ``<models_dir>/<name>`` (absolute
    paths, as TensorFlow Serving wants them), keeping the latest two versions of each."""
    config = model_management_pb2.ModelServerConfig()
    for name in names:
        model = config.model_config_list.config.add()
        model.name = name
        model.base_path = str((models_dir / name).resolve())
        model.model_platform = "tensorflow"
        model.model_version_policy.latest.num_versions = VERSIONS_KEPT
    return config


def model_config_text(models_dir: Path, names: Sequence[str]) -> str:
    return text_format.MessageToString(model_server_config(models_dir, names))


def write_model_config(models_dir: Path, names: Sequence[str]) -> Path:
    """Writes ``<models_dir>/models.config`` for the named models; returns its path."""
    path = models_dir / CONFIG_FILE_NAME
    # Whole or not at all: a model server restarting meanwhile reads it.
    partial = path.with_suffix(".partial")
    partial.write_text(model_config_text(models_dir, names))
    partial.replace(path)
    return path


def reload_model_config(
    target: str, models_dir: Path, names: Sequence[str], timeout_s: float
) -> str | None:
    """Has the model server at ``target`` serve the named models (HandleReloadConfigRequest,
    which answers once the new ones are loaded) and rewrites the config file, which a restarted
    model server reads. Returns why the reload failed, or None."""
    write_model_config(models_dir, names)
    request = model_management_pb2.ReloadConfigRequest(
        config=model_server_config(models_dir, names)
    )
    try:
        with grpc.insecure_channel(target) as channel:
            reload = channel.unary_unary(
                f"/{MODEL_SERVICE}/HandleReloadConfigRequest",
                request_serializer=model_management_pb2.ReloadConfigRequest.SerializeToString,
                response_deserializer=model_management_pb2.ReloadConfigResponse.FromString,
            )
            response: model_management_pb2.ReloadConfigResponse = reload(request, timeout=timeout_s)
    except grpc.RpcError as exc:  # down or restarting: a restart reads the file written above
        return f"{exc.code().name}: {exc.details()}"
    if response.status.error_code:
        return response.status.error_message
    return None


def write_monitoring_config(models_dir: Path) -> Path:
    """Writes ``<models_dir>/monitoring.config``: Prometheus metrics on the REST port, at
    TensorFlow Serving's usual path."""
    path = models_dir / MONITORING_FILE_NAME
    path.write_text(f'prometheus_config {{ enable: true path: "{METRICS_PATH}" }}\n')
    return path
