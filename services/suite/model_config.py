"""The model server's config files for the local model repository, in TF Serving's format."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

CONFIG_FILE_NAME = "models.config"
MONITORING_FILE_NAME = "monitoring.config"
METRICS_PATH = "/monitoring/prometheus/metrics"
# Every model keeps its previous version loaded. Replicas see a new version at different times,
# and a version is safe to route to only once every replica holds it (services/gateway/fleet.py):
# meanwhile the previous one, still on all of them, serves. A forecast, which spans many
# model-server calls, also finishes on the version it started on after a rollout.
VERSIONS_KEPT = 2


def model_config_text(models_dir: Path, names: Sequence[str]) -> str:
    """A ModelServerConfig serving each named model from ``<models_dir>/<name>`` (absolute
    paths, as TensorFlow Serving wants them), keeping the latest two versions of each."""
    config = model_server_config_pb2.ModelServerConfig()
    for name in names:
        model = config.model_config_list.config.add()
        model.name = name
        model.base_path = str((models_dir / name).resolve())
        model.model_platform = "tensorflow"
        model.model_version_policy.latest.num_versions = VERSIONS_KEPT
    return text_format.MessageToString(config)


def write_model_config(models_dir: Path, names: Sequence[str]) -> Path:
    """Writes ``<models_dir>/models.config`` for the named models; returns its path."""
    path = models_dir / CONFIG_FILE_NAME
    path.write_text(model_config_text(models_dir, names))
    return path


def write_monitoring_config(models_dir: Path) -> Path:
    """Writes ``<models_dir>/monitoring.config``: Prometheus metrics on the REST port, at
    TensorFlow Serving's usual path."""
    path = models_dir / MONITORING_FILE_NAME
    path.write_text(f'prometheus_config {{ enable: true path: "{METRICS_PATH}" }}\n')
    return path
