"""Reading an export's signatures the way ``saved_model_cli show`` does, for contract tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2


def signature_defs(version_dir: Path) -> dict[str, Any]:
    """The signature_defs straight from saved_model.pb."""
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((version_dir / "saved_model.pb").read_bytes())
    return dict(saved_model.meta_graphs[0].signature_def)


def tensor_spec(info: Any) -> tuple[tf.DType, list[int]]:
    """A TensorInfo's dtype and dimensions (-1: any size)."""
    return tf.dtypes.as_dtype(info.dtype), [dim.size for dim in info.tensor_shape.dim]
