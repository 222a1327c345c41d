"""Batched primes against the real model server serving the quick forecaster: forecasts that
start together share one prime call per chunk of history, one that arrives while others prime
joins their next call, a version switch between the prime and the steps leaves every forecast on
the version it started on, and a forecast in a batch is the forecast alone, to float32 rounding.

Not to the bit: TensorFlow's CPU kernels give a row of a batch other last bits than the same row
alone. The dense head ([B, 16] x [16, 1]) sums in another order for one row than for several,
and from 8 rows on, log and exp of a [B] tensor run 8 at a time (SIMD) with the rest one by one,
which round differently. Replaying one step call of the quick forecaster with the very same
inputs, alone and beside two other rows, gave predictions of 535.878 and 535.87823; over 90
histories, prime predictions differed from alone in 1 row in 90 in batches of 2, 3 or 7 (states
never), and in batches of 8 states differed in 78 rows of 88. Batched steps always did this (and
so does TensorFlow Serving's own batching); that the gateway itself changes no bit, batched or
not, tests/unit/test_gateway_generation.py shows with a model whose arithmetic rounds the same
in any batch.

The forecasts run through the gateway's own domain core (the one its servicers call), in the
test's event loop, so that forecasts started together really are together when they prime: over
gRPC, requests reach the gateway one by one and the first may prime alone. The model-server calls
are counted by the gateway's metrics."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from servers import Stack, republish, start_stack

from services.gateway import errors
from services.gateway.domain import Deadline
from services.gateway.forecast import Forecaster, ForecastPoint, Method
from training.publish import withdraw_version
from training.series import load_airpassengers_split

pytestmark = pytest.mark.asyncio(loop_scope="session")

CHUNK = 240  # the quick forecaster's prime takes 240 values a call
HORIZON = 6
SWITCH_TIMEOUT_S = 30.0


@pytest.fixture
def forecaster_repository(forecaster_training: Any, tmp_path: Path) -> Path:
    """A private model repository holding a copy of the quick forecaster's version 1."""
    shutil.copytree(forecaster_training.published.path.parent, tmp_path / "forecaster")
    return tmp_path


@pytest_asyncio.fixture(loop_scope="session")
async def stack(forecaster_repository: Path) -> AsyncIterator[Stack]:
    stack = await start_stack(forecaster_repository)
    yield stack
    await stack.close()


def forecaster(stack: Stack) -> Forecaster:
    return stack.gateway.cores.forecaster


def history(length: int, scale: float) -> list[float]:
    """A history of ``length`` months: the AirPassengers series over and over, scaled."""
    values = load_airpassengers_split().values
    repeats = -(-length // len(values))
    return (np.tile(values, repeats)[:length] * scale).astype(np.float32).tolist()


def calls(stack: Stack, signature: str) -> float:
    return (
        stack.gateway.metrics.registry.get_sample_value(
            "gateway_backend_predict_calls_total", {"model": "forecaster", "signature": signature}
        )
        or 0.0
    )


def batches(stack: Stack, signature: str) -> tuple[float, float]:
    """How many batched calls of a signature were sent, and how many rows they held."""
    registry = stack.gateway.metrics.registry
    labels = {"model": "forecaster", "signature": signature}
    count = registry.get_sample_value("gateway_generation_batch_size_count", labels) or 0.0
    rows = registry.get_sample_value("gateway_generation_batch_size_sum", labels) or 0.0
    return count, rows


async def forecast(
    stack: Stack, values: Sequence[float], pinned: int | None = 1, horizon: int = HORIZON
) -> list[ForecastPoint]:
    return await forecaster(stack).forecast_all(
        values, horizon, Method.STATEFUL, pinned, Deadline.after(60)
    )


def numbers(points: list[ForecastPoint]) -> list[float]:
    return [point.value for point in points]


async def test_forecasts_started_together_make_one_prime_call_per_chunk(stack: Stack) -> None:
    # Ten forecasts, each with a history of three chunks (481 to 720 values).
    histories = [history(2 * CHUNK + 1 + 24 * n, 1.0 + n / 10) for n in range(10)]
    await forecast(stack, histories[0])  # the version's schema is loaded
    before, steps_before = calls(stack, "prime"), calls(stack, "step")

    together = await asyncio.gather(*(forecast(stack, values) for values in histories))

    assert calls(stack, "prime") - before == 3  # not 10 * 3
    assert calls(stack, "step") - steps_before == HORIZON - 1
    for values, points in zip(histories, together, strict=True):
        assert [point.model.version for point in points] == [1] * HORIZON
        alone = numbers(await forecast(stack, values))
        np.testing.assert_allclose(numbers(points), alone, rtol=1e-5)


async def test_a_forecast_arriving_while_others_prime_joins_their_next_call(stack: Stack) -> None:
    early = [history(3 * CHUNK, scale) for scale in (0.8, 1.3)]
    late = history(100, 1.1)
    alone = [numbers(await forecast(stack, values)) for values in [*early, late]]
    before = calls(stack, "prime")
    sent_before, rows_before = batches(stack, "prime")

    async def once_the_first_prime_is_out() -> list[ForecastPoint]:
        give_up_at = asyncio.get_running_loop().time() + SWITCH_TIMEOUT_S
        while batches(stack, "prime")[0] == sent_before:
            assert asyncio.get_running_loop().time() < give_up_at, "no prime call went out"
            await asyncio.sleep(0)  # every turn of the loop: the call is still in flight
        return await forecast(stack, late)

    *early_points, late_points = await asyncio.gather(
        *(forecast(stack, values) for values in early), once_the_first_prime_is_out()
    )

    # The late one's only chunk went with the early ones' second: 3 calls of 2, 3 and 2 rows.
    assert calls(stack, "prime") - before == 3
    sent, rows = batches(stack, "prime")
    assert (sent - sent_before, rows - rows_before) == (3, 7)
    for points, expected in zip([*early_points, late_points], alone, strict=True):
        np.testing.assert_allclose(numbers(points), expected, rtol=1e-5)


async def test_batched_forecasts_are_those_run_alone(stack: Stack) -> None:
    # Histories of one, two and three chunks, of different series: alone, then together, where
    # they prime in calls of 5, 3 and 1 rows and step beside one another.
    lengths_and_scales = ((200, 1.0), (400, 0.7), (700, 1.4), (150, 2.0), (260, 0.5))
    histories = [history(length, scale) for length, scale in lengths_and_scales]
    alone = [numbers(await forecast(stack, values, horizon=24)) for values in histories]

    together = await asyncio.gather(*(forecast(stack, v, horizon=24) for v in histories))

    for points, expected in zip(together, alone, strict=True):
        np.testing.assert_allclose(numbers(points), expected, rtol=1e-5)  # see the docstring


async def test_a_version_switch_between_prime_and_steps_leaves_each_forecast_on_its_version(
    stack: Stack,
) -> None:
    old_values, new_values = history(300, 1.0), history(150, 1.2)
    expected_old = numbers(await forecast(stack, old_values, horizon=24))

    # Primed on version 1, then version 2 is published and becomes the serving one.
    started = forecaster(stack).forecast(old_values, 24, Method.STATEFUL, None, Deadline.after(60))
    first = await anext(started)
    assert first.model.version == 1
    assert await asyncio.to_thread(republish, stack.repository / "forecaster", 1) == 2
    await serving(stack, 2)

    async def rest() -> list[ForecastPoint]:
        return [point async for point in started]

    # Its steps on version 1 run beside a new forecast's prime and steps on version 2.
    old_rest, new = await asyncio.gather(rest(), forecast(stack, new_values, None, 24))

    assert [point.model.version for point in [first, *old_rest]] == [1] * 24
    assert numbers([first, *old_rest]) == expected_old
    assert [point.model.version for point in new] == [2] * 24
    assert numbers(new) == numbers(await forecast(stack, new_values, 1, 24))  # same weights

    # Primed on version 2, which is withdrawn before its steps: no other version may finish
    # it, as before batching; a whole forecast asked for now is computed by version 1.
    started = forecaster(stack).forecast(new_values, 24, Method.STATEFUL, None, Deadline.after(60))
    assert (await anext(started)).model.version == 2
    await asyncio.to_thread(withdraw_version, stack.repository / "forecaster", 2)
    await serving(stack, 1)
    with pytest.raises(errors.VersionUnloaded):
        async for _point in started:
            pass
    again = await forecast(stack, new_values, None, 24)
    assert [point.model.version for point in again] == [1] * 24


async def serving(stack: Stack, version: int) -> None:
    """Waits until the gateway serves ``version`` of the forecaster."""
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + SWITCH_TIMEOUT_S
    while await stack.gateway.catalog.serving_version("forecaster", Deadline.after(5)) != version:
        assert loop.time() < give_up_at, f"the gateway never served version {version}"
        await asyncio.sleep(0.05)
