"""The forecaster: its peers, metrics.json, and the exported window/step/prime/metadata contract."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from saved_models import signature_defs, tensor_spec

from services.modelserver.servable import Servable, load_servable
from services.modelserver.warmup import warm_up
from training.contracts.forecaster import PRIME_CHUNK
from training.forecaster.coding import SeriesCoding
from training.forecaster.data import training_sequences
from training.forecaster.generation import generate, prime_chunk, prime_in_chunks
from training.forecaster.peers import holt_winters_forecast, rmse, seasonal_naive_forecast
from training.forecaster.results import ForecasterResult
from training.series import load_airpassengers_split
from training.warmup import read_warmup_requests

WINDOW_SIZE = 24
SIGNATURES = {"serving_default", "window", "step", "prime", "metadata"}
# Raw values are passengers in thousands (100..600): compare them relative to their size.
RTOL = 1e-5
ATOL = 1e-4


def specs(tensors: Any) -> dict[str, tuple[tf.DType, list[int]]]:
    return {name: tensor_spec(info) for name, info in tensors.items()}


@pytest.fixture(scope="module")
def loaded(forecaster_training: ForecasterResult) -> Any:
    return tf.saved_model.load(str(forecaster_training.published.path))


@pytest.fixture(scope="module")
def state_size(forecaster_training: ForecasterResult) -> int:
    return int(forecaster_training.model.state_size)


def histories() -> np.ndarray:
    """Three 30-month histories from different points of the series, [3, 30]."""
    values = load_airpassengers_split().values
    return np.stack([values[start : start + 30] for start in (0, 50, 102)])


def primed(loaded: Any, history: np.ndarray, state_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The exported ``prime`` over a whole history: its prediction and state."""
    return prime_in_chunks(loaded.signatures["prime"], history, state_size)


def allclose(actual: Any, expected: Any) -> None:
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=RTOL, atol=ATOL)


# The peers and the forecast.


def test_seasonal_naive_matches_a_hand_computation(
    forecaster_training: ForecasterResult,
) -> None:
    split = load_airpassengers_split()
    # 1960 forecast as 1959 again: January 1960 is January 1959 (month 121), and so on.
    squared = [
        (float(split.train[120 + month]) - float(split.test[month])) ** 2 for month in range(12)
    ]
    by_hand = math.sqrt(sum(squared) / 12)

    assert by_hand == pytest.approx(50.708, abs=1e-3)
    assert forecaster_training.metrics.peers.seasonal_naive == pytest.approx(by_hand, rel=1e-9)
    np.testing.assert_array_equal(
        seasonal_naive_forecast(split.train, 12, 12), split.train[120:132]
    )
    # Past one period it repeats the last season again.
    assert (
        seasonal_naive_forecast(split.train, 15, 12)[12:].tolist() == split.train[120:123].tolist()
    )


def test_holt_winters_peer() -> None:
    split = load_airpassengers_split()
    forecast = holt_winters_forecast(split.train, 12, 12)
    assert forecast.shape == (12,)
    assert rmse(forecast, split.test) == pytest.approx(17.0, abs=0.3)


def test_quick_profile_forecast_beats_seasonal_naive(forecaster_training: ForecasterResult) -> None:
    metrics = forecaster_training.metrics
    assert metrics.rmse < metrics.peers.seasonal_naive
    assert metrics.ratio_to_seasonal_naive < 1.0
    assert np.all(np.isfinite(forecaster_training.forecasts.model))


def test_the_forecast_is_generated_with_the_exported_step_signature(
    forecaster_training: ForecasterResult, loaded: Any
) -> None:
    split = forecaster_training.split
    signatures = {name: loaded.signatures[name] for name in ("prime", "step")}

    state_size = forecaster_training.model.state_size
    forecast = generate(signatures, split.train[None, :], 12, state_size)[0]

    allclose(forecast, forecaster_training.forecasts.model)
    assert rmse(forecast, split.test) == pytest.approx(forecaster_training.metrics.rmse, rel=1e-4)


def test_sine_sanity_check_generates_a_sine(forecaster_training: ForecasterResult) -> None:
    sine = forecaster_training.sine
    assert sine.generated.shape == (50,)
    assert sine.rmse == pytest.approx(rmse(sine.generated, sine.split.test))
    # A sine of amplitude 1: a flat line would score about 0.7, a wrong phase more.
    assert sine.rmse < 0.2


# metrics.json


def test_metrics_json(forecaster_training: ForecasterResult, state_size: int) -> None:
    version_dir = forecaster_training.published.path
    metrics = json.loads((version_dir / "metrics.json").read_text())

    assert metrics == forecaster_training.metrics_dict()
    assert set(metrics) == {
        "model",
        "version",
        "profile",
        "rmse",
        "window_rmse",
        "peers",
        "ratio_to_seasonal_naive",
        "sine",
        "n_train",
        "n_test",
        "window_size",
        "state_size",
        "epochs",
        "train_seconds",
        "created",
        "seed",
    }
    assert metrics["model"] == "forecaster"
    assert metrics["version"] == int(version_dir.name)
    assert metrics["profile"] == "quick"
    assert set(metrics["peers"]) == {"seasonal_naive", "holt_winters"}
    assert metrics["peers"]["seasonal_naive"] == pytest.approx(50.708, abs=1e-3)
    assert metrics["peers"]["holt_winters"] == pytest.approx(17.0, abs=0.3)
    assert metrics["ratio_to_seasonal_naive"] == pytest.approx(
        metrics["rmse"] / metrics["peers"]["seasonal_naive"]
    )
    assert 0 < metrics["window_rmse"] < metrics["peers"]["seasonal_naive"]
    assert metrics["sine"]["steps"] == 50
    assert 0 <= metrics["sine"]["rmse"] < 0.2
    assert (metrics["n_train"], metrics["n_test"]) == (132, 12)
    assert metrics["window_size"] == WINDOW_SIZE
    assert metrics["state_size"] == state_size
    assert metrics["epochs"] > 0
    assert metrics["train_seconds"] > 0
    assert datetime.fromisoformat(metrics["created"]).utcoffset() is not None
    assert metrics["seed"] == forecaster_training.config.seed


# The exported contract.


def test_signature_defs_match_the_contract(
    forecaster_training: ForecasterResult, state_size: int
) -> None:
    signatures = signature_defs(forecaster_training.published.path)
    assert set(signatures) >= SIGNATURES

    for name in ("serving_default", "window"):
        assert specs(signatures[name].inputs) == {"window": (tf.float32, [-1, WINDOW_SIZE])}
        assert specs(signatures[name].outputs) == {"next_value": (tf.float32, [-1])}

    assert specs(signatures["step"].inputs) == {
        "value": (tf.float32, [-1]),
        "state": (tf.float32, [-1, state_size]),
    }
    assert specs(signatures["step"].outputs) == {
        "prediction": (tf.float32, [-1]),
        "state": (tf.float32, [-1, state_size]),
    }

    # A fixed width: every prime request has the same shape, so TensorFlow Serving's batching
    # can merge any of them.
    assert specs(signatures["prime"].inputs) == {
        "history": (tf.float32, [-1, PRIME_CHUNK]),
        "count": (tf.int32, [-1]),
        "state": (tf.float32, [-1, state_size]),
    }
    assert specs(signatures["prime"].outputs) == {
        "prediction": (tf.float32, [-1]),
        "state": (tf.float32, [-1, state_size]),
    }

    assert specs(signatures["metadata"].inputs) == {"rows": (tf.int32, [-1])}
    assert specs(signatures["metadata"].outputs) == {
        "window_size": (tf.int64, [-1]),
        "state_size": (tf.int64, [-1]),
        "min_history": (tf.int64, [-1]),
        "min_value": (tf.float32, [-1]),
    }


def test_metadata_values(loaded: Any, state_size: int) -> None:
    rows = loaded.signatures["metadata"](rows=tf.constant([0]))
    outputs = {name: value.numpy()[0] for name, value in rows.items()}

    assert outputs["window_size"] == WINDOW_SIZE
    assert outputs["state_size"] == state_size
    assert outputs["min_history"] == 1
    assert 0 < outputs["min_value"] < 1


def test_export_round_trip(
    forecaster_training: ForecasterResult, loaded: Any, state_size: int
) -> None:
    model = forecaster_training.model
    history = histories()
    window = history[:, -WINDOW_SIZE:]

    outputs = loaded.signatures["window"](window=tf.constant(window))
    allclose(outputs["next_value"], model.prime(tf.constant(window))[0])
    default = loaded.signatures["serving_default"](window=tf.constant(window))
    allclose(default["next_value"], outputs["next_value"])

    exported_prediction, exported_state = primed(loaded, history, state_size)
    prediction, state = model.prime(tf.constant(history))
    allclose(exported_prediction, prediction)
    allclose(exported_state, state)

    value = tf.constant(history[:, 0])
    outputs = loaded.signatures["step"](value=value, state=state)
    prediction, state = model.step(value, state)
    allclose(outputs["prediction"], prediction)
    allclose(outputs["state"], state)


def test_stepping_from_the_zero_state_equals_prime_and_window(loaded: Any, state_size: int) -> None:
    history = histories()
    state = tf.zeros([len(history), state_size])
    for month in range(history.shape[1]):
        outputs = loaded.signatures["step"](value=tf.constant(history[:, month]), state=state)
        state = outputs["state"]

    prediction, primed_state = primed(loaded, history, state_size)
    allclose(outputs["prediction"], prediction)
    allclose(state, primed_state)

    # `window` is `prime` on exactly window_size values.
    window = history[:, -WINDOW_SIZE:]
    windowed = loaded.signatures["window"](window=tf.constant(window))
    allclose(windowed["next_value"], primed(loaded, window, state_size)[0])


def test_prime_ends_in_the_state_stepping_reaches_bit_for_bit(loaded: Any, state_size: int) -> None:
    """The prime computes its inputs before its loop and runs only the recurrence inside; each
    row must still end exactly where stepping value by value does: from a state mid-series (a
    later chunk), with rows of different lengths in one call, and a row with no values."""
    history = histories()
    start = tf.constant(primed(loaded, history[:, :7], state_size)[1])
    counts = np.array([23, 1, 0], np.int32)
    inputs = prime_chunk(history[:, 7:], np.asarray(start))
    inputs["count"] = counts
    outputs = loaded.signatures["prime"](**{k: tf.constant(v) for k, v in inputs.items()})
    for row, count in enumerate(counts):
        state = start[row : row + 1]
        for month in range(7, 7 + count):
            stepped = loaded.signatures["step"](
                value=tf.constant(history[row : row + 1, month]), state=state
            )
            state = stepped["state"]
        np.testing.assert_array_equal(outputs["state"][row], state[0])
        if count:
            np.testing.assert_array_equal(outputs["prediction"][row], stepped["prediction"][0])
        else:
            assert outputs["prediction"][row] == 0.0


def test_a_long_history_primes_in_chunks_like_one_pass(
    forecaster_training: ForecasterResult, loaded: Any, state_size: int
) -> None:
    values = load_airpassengers_split().values
    history = np.tile(values, 3)[None, : PRIME_CHUNK + 100]  # two chunks, the second partial
    prediction, state = primed(loaded, history, state_size)
    expected_prediction, expected_state = forecaster_training.model.prime(tf.constant(history))
    allclose(prediction, expected_prediction)
    allclose(state, expected_state)
    # Padding is ignored: the same values with a different tail of padding agree.
    inputs = prime_chunk(history[:, :10], np.zeros((1, state_size), np.float32))
    inputs["history"][:, 10:] = 999.0
    padded = loaded.signatures["prime"](**{k: tf.constant(v) for k, v in inputs.items()})
    allclose(padded["state"], primed(loaded, history[:, :10], state_size)[1])


def test_prime_takes_a_single_value_and_the_zero_state_is_the_start(
    loaded: Any, state_size: int
) -> None:
    values = np.array([112.0, 450.0], np.float32)

    prediction, state = primed(loaded, values[:, None], state_size)
    stepped = loaded.signatures["step"](value=tf.constant(values), state=tf.zeros([2, state_size]))

    allclose(prediction, stepped["prediction"])
    allclose(state, stepped["state"])
    assert np.all(np.isfinite(prediction))


def test_step_rows_are_independent_so_clients_can_share_a_batch(
    loaded: Any, state_size: int
) -> None:
    # The gateway batches steps of different forecasts, each at its own point, into one call.
    history = histories()
    state = tf.constant(primed(loaded, history, state_size)[1])
    values = tf.constant(history[:, -1] * 1.01)

    batched = loaded.signatures["step"](value=values, state=state)
    for row in range(len(history)):
        alone = loaded.signatures["step"](value=values[row : row + 1], state=state[row : row + 1])
        allclose(alone["prediction"], batched["prediction"][row : row + 1])
        allclose(alone["state"], batched["state"][row : row + 1])


def run_signature(servable: Servable, name: str, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    signature = servable.signature_def_map.signature_def[name]
    output_names = sorted(signature.outputs)
    values = servable.run(
        {signature.inputs[alias].name: value for alias, value in inputs.items()},
        [signature.outputs[alias].name for alias in output_names],
    )
    return dict(zip(output_names, values, strict=True))


def test_export_loads_as_a_session_bundle_like_tensorflow_serving(
    forecaster_training: ForecasterResult, loaded: Any, state_size: int
) -> None:
    # TensorFlow Serving runs a SavedModel as a graph in a session, not through its object graph.
    published = forecaster_training.published
    servable = load_servable("forecaster", published.version, published.path)
    assert set(servable.signature_def_map.signature_def) >= SIGNATURES
    history = histories()
    window = history[:, -WINDOW_SIZE:]

    for name in ("window", "serving_default"):
        outputs = run_signature(servable, name, {"window": window})
        allclose(
            outputs["next_value"],
            loaded.signatures["window"](window=tf.constant(window))["next_value"],
        )

    inputs = prime_chunk(history, np.zeros((len(history), state_size), np.float32))
    session_primed = run_signature(servable, "prime", inputs)
    expected_prediction, expected_state = primed(loaded, history, state_size)
    allclose(session_primed["prediction"], expected_prediction)
    allclose(session_primed["state"], expected_state)

    inputs = {"value": history[:, -1], "state": session_primed["state"]}
    stepped = run_signature(servable, "step", inputs)
    expected = loaded.signatures["step"](
        value=tf.constant(history[:, -1]), state=tf.constant(session_primed["state"])
    )
    allclose(stepped["prediction"], expected["prediction"])
    allclose(stepped["state"], expected["state"])

    metadata = run_signature(servable, "metadata", {"rows": np.zeros(1, np.int32)})
    assert (int(metadata["window_size"][0]), int(metadata["state_size"][0])) == (
        WINDOW_SIZE,
        state_size,
    )


def test_warmup_requests_run_on_the_export(
    forecaster_training: ForecasterResult, loaded: Any
) -> None:
    requests = read_warmup_requests(forecaster_training.published.path)
    by_signature: dict[str, list[int]] = {}
    for request in requests:
        assert request.model_spec.name == "forecaster"
        name = request.model_spec.signature_name
        inputs = {alias: tf.make_ndarray(proto) for alias, proto in request.inputs.items()}
        outputs = loaded.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
        assert outputs
        for value in outputs.values():
            assert np.all(np.isfinite(value.numpy()))
        batch = len(next(iter(inputs.values()))) if inputs else 0
        by_signature.setdefault(name, []).append(batch)

    assert set(by_signature) == {"window", "step", "prime", "metadata"}
    for name in ("window", "step", "prime"):
        assert 1 in by_signature[name]  # a single series
        assert max(by_signature[name]) > 1  # and a small batch

    # And the model server replays them on the session bundle before the version serves.
    published = forecaster_training.published
    servable = load_servable("forecaster", published.version, published.path)
    assert warm_up(servable) == len(requests)


def test_reports_hold_tensorboard_logs_and_pictures(forecaster_training: ForecasterResult) -> None:
    directory = forecaster_training.reports.directory
    for picture in (
        "training_curves.png",
        "forecast.png",
        "sine_generation.png",
        "sine_training_curves.png",
    ):
        assert (directory / picture).read_bytes().startswith(b"\x89PNG"), picture
    assert list((directory / "tensorboard").rglob("events.out.tfevents.*"))


# The pieces, without training.


def test_coding_targets_decode_back_to_the_next_values() -> None:
    split = load_airpassengers_split()
    coding = SeriesCoding.fit(split.train, log=True, change=True, min_value=1e-3)
    values = split.values

    targets = coding.targets(values)
    decoded = coding.decode(tf.math.log(tf.constant(values[:-1])), tf.constant(targets))

    allclose(decoded, values[1:])
    # Scaling is fitted on the training months only.
    changes = np.diff(np.log(split.train.astype(np.float64)))
    assert coding.center == pytest.approx(changes.mean())
    assert coding.scale == pytest.approx(changes.std())


def test_training_sequences_run_from_the_zero_state_to_the_end() -> None:
    split = load_airpassengers_split()
    coding = SeriesCoding.fit(split.train, log=True, change=True, min_value=1e-3)

    sequences = training_sequences(
        split.train, coding, stride=1, min_length=24, max_length=131, burn_in=2
    )

    assert sequences.inputs.shape == (108, 131)
    assert sequences.targets.shape == (108, 131, 1)
    assert sequences.weights.shape == (108, 131)
    np.testing.assert_array_equal(sequences.inputs[0], split.train[:131])
    np.testing.assert_array_equal(sequences.inputs[5, :126], split.train[5:131])
    # Each crop is scored from its burn-in to its last real target, never on padding.
    assert sequences.weights[0].sum() == 129
    assert sequences.weights[5].sum() == 124
    assert sequences.weights[5, :2].sum() == 0
    np.testing.assert_allclose(sequences.targets[5, :126, 0], coding.targets(split.train[5:]))
