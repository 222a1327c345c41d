"""The model server's config file for the local model repository, in TF Serving's format."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

CONFIG_FILE_NAME = "models.config"


def model_config_text(models_dir: Path, names: Sequence[str]) -> str:
    """A ModelServerConfig serving each named model's latest version from ``<models_dir>/<name>``
    (absolute paths, as TensorFlow Serving wants them)."""
    config = model_server_config_pb2.ModelServerConfig()
    for name in names:
        model = config.model_config_list.config.add()
        model.name = name
        model.base_path = str((models_dir / name).resolve())
        model.model_platform = "tensorflow"
    return text_format.MessageToString(config)


def write_model_config(models_dir: Path, names: Sequence[str]) -> Path:
    """Writes ``<models_dir>/models.config`` for the named models; returns its path."""
    path = models_dir / CONFIG_FILE_NAME
    path.write_text(model_config_text(models_dir, names))
    return path
