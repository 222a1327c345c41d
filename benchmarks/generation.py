"""Forecast generation strategies: horizon 48 for 1, 16 and 64 concurrent Forecast calls.

- window: the course's naive re-feed, one Predict per step sending the whole window (O(window));
- step: the step signature with explicit state, one Predict per step (O(1)), each forecast
  alone (a gateway with --max_generation_batch=1);
- continuous batching: the same steps, with the steps of all forecasts in flight merged into one
  Predict (the gateway's default).
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from benchmarks.harness import Measurement, Stability, measure
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from training.series import load_airpassengers_split

HORIZON = 48
CONCURRENCY = (1, 16, 64)
TARGET_CONCURRENCY = 64
# Gateways the stack starts for this benchmark: name -> extra flags.
GATEWAYS = {"one step per call": ["--max_generation_batch=1"]}
STRATEGIES = ("window", "step", "continuous batching")


@dataclass(frozen=True)
class GenerationRow:
    concurrency: int
    by_strategy: dict[str, Measurement]

    def speedup(self, strategy: str) -> float:
        """Throughput of a strategy over the naive window re-feed."""
        return self.by_strategy[strategy].throughput / self.by_strategy["window"].throughput


async def run(
    default_gateway_port: int, unbatched_gateway_port: int, stability: Stability
) -> list[GenerationRow]:
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
        calls = {
            "window": lambda: default.Forecast(window, timeout=120),
            "step": lambda: unbatched.Forecast(stateful, timeout=120),
            "continuous batching": lambda: default.Forecast(stateful, timeout=120),
        }
        for concurrency in CONCURRENCY:
            by_strategy = {
                strategy: await measure(calls[strategy], concurrency, stability)
                for strategy in STRATEGIES
            }
            rows.append(GenerationRow(concurrency, by_strategy))
    return rows
