"""Forecasts through the serving signatures, called as a client calls them: ``prime_chunk``
builds one ``prime`` call's inputs, ``prime_in_chunks`` primes a history of any length chunk by
chunk, ``generate`` continues it with ``step`` fed its own predictions, and
``one_step_forecasts`` asks ``window`` for each held-out month."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from training.contracts.forecaster import (
    COUNT_INPUT,
    HISTORY_INPUT,
    NEXT_VALUE_OUTPUT,
    PREDICTION_OUTPUT,
    PRIME_CHUNK,
    PRIME_SIGNATURE,
    STATE,
    STEP_SIGNATURE,
    WINDOW_SIGNATURE,
)
from training.series import SeriesSplit


def prime_chunk(values: np.ndarray, state: np.ndarray) -> dict[str, np.ndarray]:
    """The inputs of one ``prime`` call: values [B, <= PRIME_CHUNK] padded to the signature's
    width, their count, and the state [B, S] before them."""
    rows, count = values.shape
    history = np.zeros((rows, PRIME_CHUNK), np.float32)
    history[:, :count] = values
    return {
        HISTORY_INPUT: history,
        COUNT_INPUT: np.full(rows, count, np.int32),
        STATE: np.asarray(state, np.float32),
    }


def prime_in_chunks(
    prime: Callable[..., Mapping[str, Any]], history: np.ndarray, state_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``prime`` signature over a history [B, T] of any length: PRIME_CHUNK values per call,
    carrying the state from one call to the next. Returns the prediction [B] and state [B, S]."""
    history = np.asarray(history, np.float32)
    state = np.zeros((history.shape[0], state_size), np.float32)
    prediction = np.zeros(history.shape[0], np.float32)
    for start in range(0, history.shape[1], PRIME_CHUNK):
        inputs = prime_chunk(history[:, start : start + PRIME_CHUNK], state)
        outputs = prime(**{name: tf.constant(value) for name, value in inputs.items()})
        prediction = np.asarray(outputs[PREDICTION_OUTPUT])
        state = np.asarray(outputs[STATE])
    return prediction, state


def generate(
    functions: dict[str, Any], history: np.ndarray, horizon: int, state_size: int
) -> np.ndarray:
    """``horizon`` values after ``history`` [B, T]: ``prime`` on the history, then ``step`` fed
    with each prediction in turn. Returns [B, horizon]."""
    first, primed = prime_in_chunks(functions[PRIME_SIGNATURE], history, state_size)
    predictions = [tf.constant(first)]
    state = tf.constant(primed)
    for _ in range(horizon - 1):
        outputs = functions[STEP_SIGNATURE](value=predictions[-1], state=state)
        predictions.append(outputs[PREDICTION_OUTPUT])
        state = outputs[STATE]
    return np.stack([prediction.numpy() for prediction in predictions], axis=1)


def one_step_forecasts(
    functions: dict[str, Any], split: SeriesSplit, window_size: int
) -> np.ndarray:
    """Each held-out value predicted by ``window`` from the ``window_size`` actual values
    before it."""
    values = split.values
    start = len(split.train)
    windows = np.stack([values[index - window_size : index] for index in range(start, len(values))])
    outputs = functions[WINDOW_SIGNATURE](window=tf.constant(windows, tf.float32))
    return np.asarray(outputs[NEXT_VALUE_OUTPUT].numpy())
