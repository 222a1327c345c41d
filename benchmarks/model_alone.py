"""A model's own cost: one signature run in-process on the latest version, with no server."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from tensorflow.core.framework import tensor_pb2

from services.gateway.tensors import to_tensor_proto
from services.modelserver.predict import prepare_predict, run_session
from services.modelserver.servable import Servable, load_servable
from training.publish import latest_version


def load_latest(models_dir: Path, model: str) -> Servable:
    version = latest_version(models_dir / model)
    assert version is not None, f"no {model} version to benchmark"
    return load_servable(model, version, models_dir / model / str(version))


def median_run_ms(
    servable: Servable, signature: str, inputs: Mapping[str, np.ndarray], repeats: int = 50
) -> float:
    """The median time of one session run of a signature on these inputs, in ms."""
    # The tensors the gateway sends, as the model server parses them.
    protos = {
        name: tensor_pb2.TensorProto.FromString(to_tensor_proto(array).SerializeToString())
        for name, array in inputs.items()
    }
    run = prepare_predict(servable, signature, protos, [])
    run_session(servable, run.feeds, run.fetches)  # the first run builds the callable
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run_session(servable, run.feeds, run.fetches)
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000)
