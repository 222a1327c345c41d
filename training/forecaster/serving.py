"""What the export serves: ``serving_functions`` turns a trained model into the ``window``,
``step``, ``prime`` and ``metadata`` functions of the contract (training/contracts/forecaster.py),
``ServingFunctions`` gives them as endpoints with their input signatures (or traced, for scoring
in process), and ``warmup_requests`` are the calls a model server makes to each before it serves
them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from training.contracts.forecaster import (
    COUNT_INPUT,
    HISTORY_INPUT,
    MIN_HISTORY_METADATA,
    MIN_VALUE_METADATA,
    NEXT_VALUE_OUTPUT,
    PREDICTION_OUTPUT,
    PRIME_CHUNK,
    PRIME_SIGNATURE,
    STATE,
    STATE_SIZE_METADATA,
    STEP_SIGNATURE,
    VALUE_INPUT,
    WINDOW_INPUT,
    WINDOW_SIGNATURE,
    WINDOW_SIZE_METADATA,
)
from training.export import Endpoint, metadata_endpoint, metadata_warmup
from training.forecaster.generation import prime_chunk
from training.forecaster.model import RecurrentForecaster
from training.series import SeriesSplit
from training.warmup import WarmupRequest


@dataclass(frozen=True)
class ServingFunctions:
    """The exported signatures as functions of one model (traced with their input signatures)."""

    window: Callable[..., dict[str, tf.Tensor]]
    step: Callable[..., dict[str, tf.Tensor]]
    prime: Callable[..., dict[str, tf.Tensor]]
    metadata: Mapping[str, tf.Tensor]
    window_size: int
    state_size: int

    def endpoints(self) -> list[Endpoint]:
        state = tf.TensorSpec([None, self.state_size], tf.float32, name=STATE)
        return [
            Endpoint(
                WINDOW_SIGNATURE,
                self.window,
                [tf.TensorSpec([None, self.window_size], tf.float32, name=WINDOW_INPUT)],
            ),
            Endpoint(
                STEP_SIGNATURE,
                self.step,
                [tf.TensorSpec([None], tf.float32, name=VALUE_INPUT), state],
            ),
            Endpoint(
                PRIME_SIGNATURE,
                self.prime,
                [
                    tf.TensorSpec([None, PRIME_CHUNK], tf.float32, name=HISTORY_INPUT),
                    tf.TensorSpec([None], tf.int32, name=COUNT_INPUT),
                    state,
                ],
            ),
            metadata_endpoint(self.metadata),
        ]

    def concrete(self) -> dict[str, Any]:
        """Concrete functions traced exactly as the export traces them, by signature name."""
        return {
            endpoint.name: tf.function(
                endpoint.function, input_signature=list(endpoint.input_signature)
            ).get_concrete_function()
            for endpoint in self.endpoints()
        }


def serving_functions(model: RecurrentForecaster, window_size: int) -> ServingFunctions:
    constants = {
        WINDOW_SIZE_METADATA: tf.constant(window_size, tf.int64),
        STATE_SIZE_METADATA: tf.constant(model.state_size, tf.int64),
        MIN_HISTORY_METADATA: tf.constant(1, tf.int64),
        MIN_VALUE_METADATA: tf.constant(model.coding.min_value, tf.float32),
    }

    def window(window: tf.Tensor) -> dict[str, tf.Tensor]:
        prediction, _ = model.prime(window)
        return {NEXT_VALUE_OUTPUT: prediction}

    def step(value: tf.Tensor, state: tf.Tensor) -> dict[str, tf.Tensor]:
        prediction, new_state = model.step(value, state)
        return {PREDICTION_OUTPUT: prediction, STATE: new_state}

    def prime(history: tf.Tensor, count: tf.Tensor, state: tf.Tensor) -> dict[str, tf.Tensor]:
        # The prediction comes from the final state, once.
        final = model.advance_chunk(history, count, state)
        prediction = tf.where(count > 0, model.predict_next(final), 0.0)
        return {PREDICTION_OUTPUT: prediction, STATE: final}

    return ServingFunctions(
        window=window,
        step=step,
        prime=prime,
        metadata=constants,
        window_size=window_size,
        state_size=model.state_size,
    )


def warmup_requests(split: SeriesSplit, window_size: int, state_size: int) -> list[WarmupRequest]:
    """Each signature once with one series and once with a small batch."""
    train = split.train
    windows = np.stack([train[-window_size - offset : len(train) - offset] for offset in range(4)])
    values = train[-4:]
    states = np.zeros((4, state_size), np.float32)
    return [
        WarmupRequest(WINDOW_SIGNATURE, {WINDOW_INPUT: windows[:1]}),
        WarmupRequest(WINDOW_SIGNATURE, {WINDOW_INPUT: windows}),
        WarmupRequest(STEP_SIGNATURE, {VALUE_INPUT: values[:1], STATE: states[:1]}),
        WarmupRequest(STEP_SIGNATURE, {VALUE_INPUT: values, STATE: states}),
        WarmupRequest(PRIME_SIGNATURE, prime_chunk(train[None, :PRIME_CHUNK], states[:1])),
        WarmupRequest(PRIME_SIGNATURE, prime_chunk(windows, states)),
        metadata_warmup(),
    ]
