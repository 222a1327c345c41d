"""Continuous batching: concurrent generations share one model call per step, join and leave
at any step, stay on their own model version, and get the same numbers as one at a time."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from services.gateway import errors
from services.gateway.backend import Deadline
from services.gateway.generation import FloatArray, StepBatcher

STATE_SIZE = 3


class RecurrentToy:
    """A deterministic recurrent step: the real thing for the batcher, which only moves numbers.
    Records every call's version and batch size."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    async def __call__(
        self, version: int, values: FloatArray, states: FloatArray, deadline: Deadline
    ) -> tuple[FloatArray, FloatArray]:
        self.calls.append((version, len(values)))
        await asyncio.sleep(0.001)  # a model server call takes a while
        new_states = np.tanh(states * 0.5 + values[:, None] * np.float32(0.1) + version)
        return values * np.float32(0.9) + new_states.sum(axis=1), new_states.astype(np.float32)


def reference(version: int, value: float, horizon: int) -> list[float]:
    """The same generation computed alone, one step at a time, without the batcher."""
    state = np.zeros((1, STATE_SIZE), np.float32)
    values = []
    for _ in range(horizon):
        x = np.array([value], np.float32)
        state = np.tanh(state * 0.5 + x[:, None] * np.float32(0.1) + version).astype(np.float32)
        value = float((x * np.float32(0.9) + state.sum(axis=1))[0])
        values.append(value)
    return values


async def generate(
    batcher: StepBatcher, version: int, value: float, horizon: int, delay_s: float = 0.0
) -> list[float]:
    await asyncio.sleep(delay_s)
    state = np.zeros(STATE_SIZE, np.float32)
    out = []
    async with batcher.generation():
        for _ in range(horizon):
            value, state = await batcher.step(version, value, state, Deadline.after(10))
            out.append(value)
    return out


async def test_concurrent_generations_share_one_call_per_step() -> None:
    model = RecurrentToy()
    batcher = StepBatcher(model)
    starts = [float(i) for i in range(16)]

    results = await asyncio.gather(*(generate(batcher, 1, start, 12) for start in starts))

    for start, values in zip(starts, results, strict=True):
        np.testing.assert_allclose(values, reference(1, start, 12), rtol=1e-6)
    assert len(model.calls) < 16 * 12
    assert len(model.calls) <= 12 + 2  # about one call per step
    assert max(size for _, size in model.calls) == 16
    await batcher.close()


async def test_a_late_generation_joins_at_the_next_step_and_leaves_when_done() -> None:
    model = RecurrentToy()
    batcher = StepBatcher(model)

    long_run, late, short = await asyncio.gather(
        generate(batcher, 1, 1.0, 30),
        generate(batcher, 1, 2.0, 10, delay_s=0.01),
        generate(batcher, 1, 3.0, 3),
    )

    assert long_run == pytest.approx(reference(1, 1.0, 30), rel=1e-6)
    assert late == pytest.approx(reference(1, 2.0, 10), rel=1e-6)
    assert short == pytest.approx(reference(1, 3.0, 3), rel=1e-6)
    sizes = [size for _, size in model.calls]
    assert 3 in sizes or 2 in sizes  # the late one rode along with the long one
    assert sizes[-1] == 1  # the long one finished alone
    assert len(model.calls) < 30 + 10 + 3
    await batcher.close()


async def test_each_generation_stays_on_its_model_version() -> None:
    model = RecurrentToy()
    batcher = StepBatcher(model)

    old, new = await asyncio.gather(generate(batcher, 1, 1.0, 5), generate(batcher, 2, 1.0, 5))

    assert old == pytest.approx(reference(1, 1.0, 5), rel=1e-6)
    assert new == pytest.approx(reference(2, 1.0, 5), rel=1e-6)
    assert {version for version, _ in model.calls} == {1, 2}
    assert all(size == 1 for _, size in model.calls)
    await batcher.close()


async def test_batch_size_is_capped() -> None:
    model = RecurrentToy()
    batcher = StepBatcher(model, max_batch_size=4)

    await asyncio.gather(*(generate(batcher, 1, float(i), 3) for i in range(10)))

    assert max(size for _, size in model.calls) == 4
    await batcher.close()


async def test_a_failed_call_fails_every_generation_in_it_and_the_batcher_recovers() -> None:
    model = RecurrentToy()
    failing = True

    async def flaky(
        version: int, values: FloatArray, states: FloatArray, deadline: Deadline
    ) -> tuple[FloatArray, FloatArray]:
        if failing:
            raise errors.BackendUnavailable("model server is unavailable")
        return await model(version, values, states, deadline)

    batcher = StepBatcher(flaky)
    outcomes = await asyncio.gather(
        *(generate(batcher, 1, float(i), 4) for i in range(3)), return_exceptions=True
    )
    assert all(isinstance(outcome, errors.BackendUnavailable) for outcome in outcomes)

    failing = False
    assert await generate(batcher, 1, 1.0, 4) == pytest.approx(reference(1, 1.0, 4), rel=1e-6)
    await batcher.close()


async def test_a_cancelled_generation_does_not_disturb_the_others() -> None:
    model = RecurrentToy()
    batcher = StepBatcher(model)
    doomed = asyncio.create_task(generate(batcher, 1, 5.0, 1000))
    survivor = asyncio.create_task(generate(batcher, 1, 1.0, 20))
    await asyncio.sleep(0.01)
    doomed.cancel()

    assert await survivor == pytest.approx(reference(1, 1.0, 20), rel=1e-6)
    with pytest.raises(asyncio.CancelledError):
        await doomed
    await batcher.close()
