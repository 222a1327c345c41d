"""Forecast generation strategies: horizon 48 for 1, 16 and 64 concurrent Forecast calls.

- window: the course's naive re-feed, one Predict per step sending the whole window (O(window));
- step: the step signature with explicit state, one Predict per step (O(1)), each forecast
  alone (a gateway with --max_generation_batch=1);
- continuous batching: the same primes and steps, those of all forecasts in flight merged into
  one Predict (the gateway's default).

At each concurrency the three take turns, one window each per repetition, in an order that
reverses each time (benchmarks.harness.alternate).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np

from benchmarks.harness import Alternation, Call, Repeated, alternate
from benchmarks.model_alone import load_latest, median_run_ms
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from training.contracts import forecaster
from training.series import load_airpassengers_split

HORIZON = 48
CONCURRENCY = (1, 16, 64)
TARGET_CONCURRENCY = 64
# Gateways the stack starts for this benchmark: name -> extra flags.
GATEWAYS = {"one step per call": ["--max_generation_batch=1"]}
STRATEGIES = ("window", "step", "continuous batching")


@dataclass(frozen=True)
class ForecasterAlone:
    """The forecaster's signatures run in-process, without any server: the model's own cost."""

    history: int  # values primed
    prime_ms: float  # prime over the whole history, one forecast
    batch_prime_ms: float  # the same prime for TARGET_CONCURRENCY forecasts in one call
    step_ms: float  # one step of TARGET_CONCURRENCY forecasts at once
    window_ms: float  # one window prediction, one forecast


def time_forecaster_alone(models_dir: Path) -> ForecasterAlone:
    servable = load_latest(models_dir, forecaster.MODEL_NAME)
    signatures = servable.signature_def_map.signature_def

    def width(signature: str, name: str) -> int:
        """The size of an input's second dimension."""
        return int(signatures[signature].inputs[name].tensor_shape.dim[1].size)

    chunk = width(forecaster.PRIME_SIGNATURE, forecaster.HISTORY_INPUT)
    state = width(forecaster.STEP_SIGNATURE, forecaster.STATE)
    window = width(forecaster.WINDOW_SIGNATURE, forecaster.WINDOW_INPUT)
    history = np.asarray(load_airpassengers_split().train, np.float32)
    padded = np.zeros((1, chunk), np.float32)
    padded[0, : len(history)] = history
    prime = {
        forecaster.HISTORY_INPUT: padded,
        forecaster.COUNT_INPUT: np.array([len(history)], np.int32),
        forecaster.STATE: np.zeros((1, state), np.float32),
    }
    batch_prime = {
        forecaster.HISTORY_INPUT: np.repeat(padded, TARGET_CONCURRENCY, axis=0),
        forecaster.COUNT_INPUT: np.full(TARGET_CONCURRENCY, len(history), np.int32),
        forecaster.STATE: np.zeros((TARGET_CONCURRENCY, state), np.float32),
    }
    step = {
        forecaster.VALUE_INPUT: np.full(TARGET_CONCURRENCY, history[-1], np.float32),
        forecaster.STATE: np.zeros((TARGET_CONCURRENCY, state), np.float32),
    }
    recent = {forecaster.WINDOW_INPUT: history[None, -window:]}
    return ForecasterAlone(
        history=len(history),
        prime_ms=median_run_ms(servable, forecaster.PRIME_SIGNATURE, prime),
        batch_prime_ms=median_run_ms(servable, forecaster.PRIME_SIGNATURE, batch_prime),
        step_ms=median_run_ms(servable, forecaster.STEP_SIGNATURE, step),
        window_ms=median_run_ms(servable, forecaster.WINDOW_SIGNATURE, recent),
    )


@dataclass(frozen=True)
class GenerationResults:
    alternation: Alternation
    rows: list[Repeated]  # by concurrency, in the order of CONCURRENCY; sides: STRATEGIES

    def at(self, concurrency: int) -> Repeated | None:
        return next((row for row in self.rows if row.concurrency == concurrency), None)


async def run(
    default_gateway_port: int,
    unbatched_gateway_port: int,
    alternation: Alternation,
    cpu_clocks: Mapping[str, Callable[[], float]] | None = None,
) -> GenerationResults:
    """``cpu_clocks``: by strategy, the CPU time of the servers that answer it."""
    history = [float(value) for value in load_airpassengers_split().train]
    window = gateway_pb2.ForecastRequest(
        history=history, horizon=HORIZON, method=gateway_pb2.GENERATION_METHOD_WINDOW
    )
    stateful = gateway_pb2.ForecastRequest(
        history=history, horizon=HORIZON, method=gateway_pb2.GENERATION_METHOD_STATEFUL
    )
    rows = []
    async with (
        grpc.aio.insecure_channel(f"localhost:{default_gateway_port}") as default_channel,
        grpc.aio.insecure_channel(f"localhost:{unbatched_gateway_port}") as unbatched_channel,
    ):
        default = gateway_pb2_grpc.GatewayServiceStub(default_channel)
        unbatched = gateway_pb2_grpc.GatewayServiceStub(unbatched_channel)
        calls: dict[str, Call] = {
            "window": lambda: default.Forecast(window, timeout=120),
            "step": lambda: unbatched.Forecast(stateful, timeout=120),
            "continuous batching": lambda: default.Forecast(stateful, timeout=120),
        }
        for concurrency in CONCURRENCY:
            rows.append(await alternate(calls, concurrency, alternation, cpu_clocks))
    return GenerationResults(alternation, rows)
