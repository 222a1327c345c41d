"""Forecasting a monthly series: autoregressive generation over the `forecaster` model.

The `forecaster` contract (training/contracts/forecaster.py), raw series values in and out
(scaling lives in the graph):
- `prime`: `history` float32 [-1, C] (the first `count` real, the rest padding), `count` int32
  [-1], `state` float32 [-1, S] -> `prediction` float32 [-1], `state` float32 [-1, S];
- `step`: `value` float32 [-1], `state` float32 [-1, S] -> `prediction`, `state`;
- `window`: `window` float32 [-1, W] -> `next_value` float32 [-1];
- `metadata`: `rows` int32 [-1] -> `window_size`, `state_size` (int64 [-1]), `min_value`.

The stateful method primes the recurrent state on the history once, C values per `prime` call,
then feeds each prediction back through `step`, carrying the state in the request: O(1) per
step, and any model-server replica can answer any call. The primes of all forecasts in flight
are batched together, and so are their steps (services/gateway/generation.py): one call per
chunk of history for every forecast priming at that moment, one per step for every forecast
generating, per version. So one forecast takes part in ceil(len(history) / C) prime calls and
horizon - 1 step calls, however many forecasts share them; N forecasts started together, each
with a history of at most k chunks, make k prime calls between them, not N * k. The window
method re-sends the last W values for every step, as the course does (horizon calls per
forecast, unbatched); it is the benchmark's baseline. Every value of one forecast comes from the
version chosen when it started.
"""

from __future__ import annotations

import enum
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from services.gateway import errors
from services.gateway.backend import ModelServerClient
from services.gateway.catalog import ModelCatalog, VersionedCache
from services.gateway.domain import Deadline, FloatArray, ModelVersion, Tensors
from services.gateway.generation import RowBatcher
from services.gateway.metrics import GatewayMetrics
from services.gateway.outputs import METADATA_SIGNATURE, output, read_metadata
from services.gateway.signatures import Signature, require
from training.contracts.common import FLOAT32_MAX as _FLOAT32_MAX
from training.contracts.forecaster import (
    COUNT_INPUT,
    HISTORY_INPUT,
    MIN_VALUE_METADATA,
    NEXT_VALUE_OUTPUT,
    PREDICTION_OUTPUT,
    PRIME_SIGNATURE,
    STATE,
    STATE_SIZE_METADATA,
    STEP_SIGNATURE,
    VALUE_INPUT,
    WINDOW_INPUT,
    WINDOW_SIGNATURE,
    WINDOW_SIZE_METADATA,
)


def _finite(value: float, position: int) -> float:
    """The last defence: a value that overflowed float32 is refused, never sent or fed back.
    The history is within what the model represents (see Forecaster.validate), but the model
    multiplies the last value by its forecast growth, so values near the top of float32 can
    overflow a few steps later; only the model's own answer shows where."""
    if math.isfinite(value):
        return value
    raise errors.InvalidInput(
        "history",
        f"the forecast after these values is not a finite float32 number at step {position} "
        f"({value!r}): they are too large for this model to continue; send a smaller series",
    )


class Method(enum.Enum):
    STATEFUL = "stateful"
    WINDOW = "window"


@dataclass(frozen=True)
class ForecastLimits:
    """What one forecast may ask for; documented in the README."""

    max_history: int = 10_000
    max_horizon: int = 240


@dataclass(frozen=True)
class ForecasterSchema:
    """What one forecaster version needs: its window and state sizes, and its signatures."""

    window_size: int
    state_size: int
    min_value: float | None  # the smallest value the model can take, if it says
    prime_chunk: int  # how many values one prime call takes
    prime: Signature
    step: Signature
    window: Signature


@dataclass(frozen=True)
class ForecastPoint:
    """One generated value: its position after the history, and the version that made it."""

    step: int
    value: float
    model: ModelVersion


class Forecaster:
    """The domain core behind Forecast and StreamForecast."""

    def __init__(
        self,
        backend: ModelServerClient,
        catalog: ModelCatalog,
        model: str,
        limits: ForecastLimits,
        max_generation_batch: int,
        metrics: GatewayMetrics,
    ) -> None:
        self._backend = backend
        self._catalog = catalog
        self._model = model
        self._limits = limits
        self._metrics = metrics
        batch_size = metrics.generation_batch_size
        # Batches of at most max_generation_batch rows: 1 sends each forecast's calls alone.
        self.primes = RowBatcher(
            self._prime_call,
            max_batch_size=max_generation_batch,
            on_batch=batch_size.labels(model, PRIME_SIGNATURE).observe,
            name="prime batcher",
        )
        self.steps = RowBatcher(
            self._step_call,
            max_batch_size=max_generation_batch,
            on_batch=batch_size.labels(model, STEP_SIGNATURE).observe,
            name="step batcher",
        )
        self.schemas = VersionedCache(self._load_schema)

    async def close(self) -> None:
        await self.primes.close()
        await self.steps.close()

    def validate(self, history: Sequence[float], horizon: int) -> FloatArray:
        """The history as float32, or InvalidInput naming the field and the reason.

        What the model can represent: it takes the logarithm of every value raised to its
        `min_value` (checked per version in _start), and its network sees the scaled change
        of that logarithm, (log x[t] - log x[t-1] - centre) / scale. For values in
        [min_value, float32 max] that is at most about 100 / scale, far inside float32, so the
        bound on the input is float32's own range; beyond it the value itself is not a float32.
        """
        if not history:
            raise errors.InvalidInput("history", "at least one past value is required")
        if len(history) > self._limits.max_history:
            raise errors.InvalidInput(
                "history", f"at most {self._limits.max_history} values; got {len(history)}"
            )
        # Vectorised: 10,000 values checked one by one would hold the event loop for milliseconds.
        values = np.asarray(history, dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values) | (np.abs(values) > _FLOAT32_MAX))
        if bad.size:
            index = int(bad[0])
            raise errors.InvalidInput(
                f"history[{index}]",
                f"must be a finite float32 number (magnitude at most {_FLOAT32_MAX:.8g}), "
                f"got {float(values[index])!r}",
            )
        if not 1 <= horizon <= self._limits.max_horizon:
            raise errors.InvalidInput(
                "horizon", f"must be from 1 to {self._limits.max_horizon}; got {horizon}"
            )
        return values.astype(np.float32)

    async def forecast(
        self,
        history: Sequence[float],
        horizon: int,
        method: Method,
        pinned: int | None,
        deadline: Deadline,
    ) -> AsyncIterator[ForecastPoint]:
        """Yields the forecast value by value, as soon as each exists; VersionUnloaded when its
        version is unloaded before the last one."""
        with self._metrics.stage(self._model, "preprocess"):
            values = self.validate(history, horizon)
        steps = self._metrics.generation_steps.labels(self._model, method.value)
        # The version is chosen once, with the first call; all later steps stay on it.
        version, first, state = await self._catalog.on_version(
            self._model, pinned, deadline, lambda v: self._start(v, values, method, deadline)
        )
        model = ModelVersion(self._model, version)
        steps.inc()
        yield ForecastPoint(1, _finite(first, 1), model)
        try:
            async for position, value in self._continue(
                version, values, first, state, horizon, method, deadline
            ):
                steps.inc()
                yield ForecastPoint(position, _finite(value, position), model)
        except errors.ModelNotFound as exc:
            # Removed or rolled back midway: no other version may finish what this one began.
            raise errors.VersionUnloaded(
                f"model {self._model} version {version} was unloaded while this forecast ran; "
                "start the forecast again"
            ) from exc

    async def forecast_all(
        self,
        history: Sequence[float],
        horizon: int,
        method: Method,
        pinned: int | None,
        deadline: Deadline,
    ) -> list[ForecastPoint]:
        """The whole forecast at once. Nothing of it has been sent when its version is unloaded
        midway, so an unpinned forecast then starts again on the version serving now."""
        try:
            return [p async for p in self.forecast(history, horizon, method, pinned, deadline)]
        except errors.VersionUnloaded:
            if pinned is not None:
                raise
        await self._catalog.refresh_model(self._model, deadline)
        return [p async for p in self.forecast(history, horizon, method, pinned, deadline)]

    async def _continue(
        self,
        version: int,
        history: FloatArray,
        first: float,
        state: FloatArray,
        horizon: int,
        method: Method,
        deadline: Deadline,
    ) -> AsyncIterator[tuple[int, float]]:
        """The values after the first, by position, all from `version`."""
        if method is Method.WINDOW:
            schema = await self.schemas.get(version, deadline)
            recent = [*history[-schema.window_size :].tolist(), first][-schema.window_size :]
            for position in range(2, horizon + 1):
                value = await self._window_step(version, schema, recent, deadline)
                recent = [*recent[1:], value]
                yield position, value
            return
        value = first
        async with self.steps.generation():
            for position in range(2, horizon + 1):
                row = {VALUE_INPUT: np.array(value, np.float32), STATE: state}
                answer = await self.steps.submit(version, row, deadline)
                value, state = float(answer[PREDICTION_OUTPUT]), answer[STATE]
                yield position, value

    async def _start(
        self, version: int, history: FloatArray, method: Method, deadline: Deadline
    ) -> tuple[int, float, FloatArray]:
        schema = await self.schemas.get(version, deadline)
        if schema.min_value is not None and (history < schema.min_value).any():
            index = int(np.flatnonzero(history < schema.min_value)[0])
            raise errors.InvalidInput(
                f"history[{index}]",
                f"must be at least {schema.min_value:g} for this model (it works on the "
                f"logarithm of the series); got {float(history[index])!r}",
            )
        if method is Method.WINDOW:
            if len(history) < schema.window_size:
                raise errors.InvalidInput(
                    "history",
                    f"the window method needs at least {schema.window_size} values; "
                    f"got {len(history)}",
                )
            recent = history[-schema.window_size :].tolist()
            value = await self._window_step(version, schema, recent, deadline)
            return version, value, np.zeros(schema.state_size, np.float32)
        first, state = await self._prime(version, schema, history, deadline)
        return version, first, state

    async def _prime(
        self, version: int, schema: ForecasterSchema, history: FloatArray, deadline: Deadline
    ) -> tuple[float, FloatArray]:
        """The recurrent state after the history, and the prediction of the value after it:
        `prime` takes a fixed number of values per call, so a long history takes several,
        each starting from the state the one before ended in. Each chunk is a row of the next
        batched prime call, beside the chunks of the other forecasts priming on this version."""
        state = np.zeros(schema.state_size, np.float32)
        first = 0.0
        async with self.primes.generation():
            for start in range(0, len(history), schema.prime_chunk):
                chunk = history[start : start + schema.prime_chunk]
                padded = np.zeros(schema.prime_chunk, np.float32)
                padded[: len(chunk)] = chunk
                row = {
                    HISTORY_INPUT: padded,
                    COUNT_INPUT: np.array(len(chunk), np.int32),
                    STATE: state,
                }
                answer = await self.primes.submit(version, row, deadline)
                first, state = float(answer[PREDICTION_OUTPUT]), answer[STATE]
        return first, state

    async def _window_step(
        self, version: int, schema: ForecasterSchema, recent: list[float], deadline: Deadline
    ) -> float:
        inputs = {WINDOW_INPUT: np.asarray([recent], dtype=np.float32)}
        schema.window.check_inputs(self._model, inputs)
        prediction = await self._backend.predict(
            self._model, version, WINDOW_SIGNATURE, inputs, deadline
        )
        return float(output(prediction.outputs, NEXT_VALUE_OUTPUT, self._model, (1,))[0])

    async def _prime_call(self, version: int, inputs: Tensors, deadline: Deadline) -> Tensors:
        """One batched prime call: `history` [B, C], `count` [B], `state` [B, S]."""
        schema = await self.schemas.get(version, deadline)
        schema.prime.check_inputs(self._model, inputs)
        answer = await self._backend.predict(
            self._model, version, PRIME_SIGNATURE, inputs, deadline
        )
        return self._recurrent_outputs(answer.outputs, inputs[STATE].shape)

    async def _step_call(self, version: int, inputs: Tensors, deadline: Deadline) -> Tensors:
        """One batched step call: `value` [B], `state` [B, S]."""
        answer = await self._backend.predict(self._model, version, STEP_SIGNATURE, inputs, deadline)
        return self._recurrent_outputs(answer.outputs, inputs[STATE].shape)

    def _recurrent_outputs(
        self, outputs: Mapping[str, npt.NDArray[Any]], state_shape: tuple[int, ...]
    ) -> Tensors:
        """A prime's or step's `prediction` [B] and `state` [B, S], as float32."""
        prediction = output(outputs, PREDICTION_OUTPUT, self._model, state_shape[:1])
        state = output(outputs, STATE, self._model, state_shape)
        return {
            PREDICTION_OUTPUT: prediction.astype(np.float32, copy=False),
            STATE: state.astype(np.float32, copy=False),
        }

    async def _load_schema(self, version: int, deadline: Deadline) -> ForecasterSchema:
        signatures = await self._backend.signatures(self._model, version, deadline)
        prime, step, window = (
            require(signatures, self._model, version, name)
            for name in (PRIME_SIGNATURE, STEP_SIGNATURE, WINDOW_SIGNATURE)
        )
        require(signatures, self._model, version, METADATA_SIGNATURE)
        metadata = await read_metadata(self._backend, self._model, version, deadline)
        window_size = int(output(metadata, WINDOW_SIZE_METADATA, self._model, ()))
        state_size = int(output(metadata, STATE_SIZE_METADATA, self._model, ()))
        min_value = None
        if MIN_VALUE_METADATA in metadata:
            min_value = float(output(metadata, MIN_VALUE_METADATA, self._model, ()))
        history = prime.inputs.get(HISTORY_INPUT)
        if history is None or history.shape is None or len(history.shape) != 2:
            raise errors.ModelContractError(
                f"model {self._model} version {version}: {PRIME_SIGNATURE} needs a "
                f"{HISTORY_INPUT} input [-1, C]"
            )
        prime_chunk = history.shape[1]
        if prime_chunk < 1:
            raise errors.ModelContractError(
                f"model {self._model} version {version}: {PRIME_SIGNATURE}'s {HISTORY_INPUT} must "
                f"have a fixed width; it is {history.describe()}"
            )
        return ForecasterSchema(
            window_size, state_size, min_value, prime_chunk, prime, step, window
        )
