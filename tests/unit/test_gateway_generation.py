"""Continuous batching: concurrent generations share one model call per step and one per chunk
of history they prime, join and leave at any call, stay on their own model version, and get the
same numbers as one at a time."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from services.gateway import errors
from services.gateway.domain import Deadline, Tensors
from services.gateway.generation import RowBatcher

STATE_SIZE = 3
CHUNK = 8  # values per prime call


class RecurrentToy:
    """A deterministic recurrent step: the real thing for the batcher, which only moves numbers.
    Records every call's version and batch size."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    async def __call__(self, version: int, inputs: Tensors, deadline: Deadline) -> Tensors:
        values, states = inputs["value"], inputs["state"]
        self.calls.append((version, len(values)))
        await asyncio.sleep(0.001)  # a model server call takes a while
        new_states = np.tanh(states * 0.5 + values[:, None] * np.float32(0.1) + version)
        predictions = values * np.float32(0.9) + new_states.sum(axis=1)
        return {"prediction": predictions, "state": new_states.astype(np.float32)}


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
    batcher: RowBatcher, version: int, value: float, horizon: int, delay_s: float = 0.0
) -> list[float]:
    await asyncio.sleep(delay_s)
    state = np.zeros(STATE_SIZE, np.float32)
    out = []
    async with batcher.generation():
        for _ in range(horizon):
            row = {"value": np.array(value, np.float32), "state": state}
            answer = await batcher.submit(version, row, Deadline.after(10))
            value, state = float(answer["prediction"]), answer["state"]
            out.append(value)
    return out


async def test_concurrent_generations_share_one_call_per_step() -> None:
    model = RecurrentToy()
    batcher = RowBatcher(model)
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
    batcher = RowBatcher(model)

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
    batcher = RowBatcher(model)

    old, new = await asyncio.gather(generate(batcher, 1, 1.0, 5), generate(batcher, 2, 1.0, 5))

    assert old == pytest.approx(reference(1, 1.0, 5), rel=1e-6)
    assert new == pytest.approx(reference(2, 1.0, 5), rel=1e-6)
    assert {version for version, _ in model.calls} == {1, 2}
    assert all(size == 1 for _, size in model.calls)
    await batcher.close()


async def test_batch_size_is_capped_and_the_rows_over_the_cap_go_at_once() -> None:
    model = RecurrentToy()
    batcher = RowBatcher(model, max_batch_size=4)

    await asyncio.gather(*(generate(batcher, 1, float(i), 3) for i in range(10)))

    sizes = [size for _, size in model.calls]
    assert max(sizes) == 4
    # Each step of the ten goes out as 4 + 4 + 2 rows together, none held for a later round.
    assert sorted(sizes) == sorted([4, 4, 2] * 3)
    await batcher.close()


async def test_a_failed_call_fails_every_generation_in_it_and_the_batcher_recovers() -> None:
    model = RecurrentToy()
    failing = True

    async def flaky(version: int, inputs: Tensors, deadline: Deadline) -> Tensors:
        if failing:
            raise errors.BackendUnavailable("model server is unavailable")
        return await model(version, inputs, deadline)

    batcher = RowBatcher(flaky)
    outcomes = await asyncio.gather(
        *(generate(batcher, 1, float(i), 4) for i in range(3)), return_exceptions=True
    )
    assert all(isinstance(outcome, errors.BackendUnavailable) for outcome in outcomes)

    failing = False
    assert await generate(batcher, 1, 1.0, 4) == pytest.approx(reference(1, 1.0, 4), rel=1e-6)
    await batcher.close()


async def test_a_cancelled_generation_does_not_disturb_the_others() -> None:
    model = RecurrentToy()
    batcher = RowBatcher(model)
    doomed = asyncio.create_task(generate(batcher, 1, 5.0, 1000))
    survivor = asyncio.create_task(generate(batcher, 1, 1.0, 20))
    await asyncio.sleep(0.01)
    doomed.cancel()

    assert await survivor == pytest.approx(reference(1, 1.0, 20), rel=1e-6)
    with pytest.raises(asyncio.CancelledError):
        await doomed
    await batcher.close()


async def test_a_batch_goes_out_with_its_latest_deadline() -> None:
    deadlines: list[float] = []

    async def model(version: int, inputs: Tensors, deadline: Deadline) -> Tensors:
        deadlines.append(deadline.expires_at)
        return {"prediction": inputs["value"], "state": inputs["state"]}

    batcher = RowBatcher(model)
    soon, late = Deadline.after(5), Deadline.after(50)
    row = {"value": np.array(1.0, np.float32), "state": np.zeros(STATE_SIZE, np.float32)}

    async def one(deadline: Deadline) -> None:
        async with batcher.generation():
            await batcher.submit(1, row, deadline)

    await asyncio.gather(one(soon), one(late))

    assert deadlines == [late.expires_at]
    await batcher.close()


async def test_a_lone_generation_never_waits_for_others() -> None:
    # However long a batch may wait for the other live generations, one alone goes at once.
    batcher = RowBatcher(RecurrentToy(), max_wait_s=30.0)

    values = await asyncio.wait_for(generate(batcher, 1, 1.0, 5), timeout=5)

    assert values == pytest.approx(reference(1, 1.0, 5), rel=1e-6)
    await batcher.close()


# Primes: a chunk of history per row, with its own count of real values and its own state.


class PrimeToy:
    """A recurrent prime over chunks of CHUNK values, from each row's own state, over its own
    `count` real values (the rest padding): the contract of the forecaster's `prime`. Only
    additions and multiplications, which IEEE 754 rounds the same in any batch, so a batched
    prime must give the very bits of one alone. Records every call's version and batch size,
    and how many calls were at the model server at once."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []
        self.started = asyncio.Event()
        self.in_flight = 0
        self.most_in_flight = 0
        self.weights = np.array([0.3, -0.7, 1.1], np.float32)

    async def __call__(self, version: int, inputs: Tensors, deadline: Deadline) -> Tensors:
        history, count, state = inputs["history"], inputs["count"], inputs["state"]
        assert history.shape == (len(count), CHUNK) and state.shape == (len(count), STATE_SIZE)
        self.calls.append((version, len(count)))
        self.started.set()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.005)  # a model server call takes a while
        self.in_flight -= 1
        return prime_rows(history, count, state, version, self.weights)


def prime_rows(
    history: np.ndarray, count: np.ndarray, state: np.ndarray, version: int, weights: np.ndarray
) -> Tensors:
    state = state.copy()
    for position in range(history.shape[1]):
        real = (position < count)[:, None]
        advanced = state * np.float32(0.5) + history[:, position, None] * weights + version
        state = np.where(real, advanced, state).astype(np.float32)
    prediction = (state[:, 0] + state[:, 1]) * np.float32(0.9) + state[:, 2]
    return {"prediction": prediction.astype(np.float32), "state": state}


def prime_alone(history: np.ndarray, version: int) -> tuple[float, np.ndarray]:
    """The same history primed without the batcher, one chunk after another."""
    weights = PrimeToy().weights
    state = np.zeros((1, STATE_SIZE), np.float32)
    prediction = np.zeros(1, np.float32)
    for start in range(0, len(history), CHUNK):
        chunk = history[start : start + CHUNK]
        padded = np.zeros((1, CHUNK), np.float32)
        padded[0, : len(chunk)] = chunk
        answer = prime_rows(padded, np.array([len(chunk)], np.int32), state, version, weights)
        prediction, state = answer["prediction"], answer["state"]
    return float(prediction[0]), state[0]


async def prime(
    batcher: RowBatcher, version: int, history: np.ndarray, start: asyncio.Event | None = None
) -> tuple[float, np.ndarray]:
    """Primes as the gateway's forecaster does: one row per chunk, each from the state the one
    before ended in; after ``start`` is set, when there is one."""
    if start is not None:
        await start.wait()
    state = np.zeros(STATE_SIZE, np.float32)
    prediction = 0.0
    async with batcher.generation():
        for begin in range(0, len(history), CHUNK):
            chunk = history[begin : begin + CHUNK]
            padded = np.zeros(CHUNK, np.float32)
            padded[: len(chunk)] = chunk
            row = {"history": padded, "count": np.array(len(chunk), np.int32), "state": state}
            answer = await batcher.submit(version, row, Deadline.after(10))
            prediction, state = float(answer["prediction"]), answer["state"]
    return prediction, state


def series(length: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(100, 600, length).astype(np.float32)


def assert_same_bits(batched: tuple[float, np.ndarray], alone: tuple[float, np.ndarray]) -> None:
    assert np.float32(batched[0]).tobytes() == np.float32(alone[0]).tobytes()
    assert batched[1].tobytes() == alone[1].tobytes()


async def test_concurrent_primes_share_one_call_per_chunk() -> None:
    model = PrimeToy()
    batcher = RowBatcher(model)
    # Twelve histories of three chunks each, every one of a different length.
    histories = [series(2 * CHUNK + 1 + n % CHUNK, seed=n) for n in range(12)]

    primed = await asyncio.gather(*(prime(batcher, 1, history) for history in histories))

    assert model.calls == [(1, 12)] * 3  # 3 calls, not 12 * 3
    for history, result in zip(histories, primed, strict=True):
        assert_same_bits(result, prime_alone(history, 1))
    await batcher.close()


async def test_histories_of_different_lengths_leave_the_batch_when_primed() -> None:
    model = PrimeToy()
    batcher = RowBatcher(model)
    histories = [series(CHUNK * chunks - 3, seed=chunks) for chunks in (1, 2, 3, 3, 5)]

    primed = await asyncio.gather(*(prime(batcher, 1, history) for history in histories))

    # The longest takes five calls; each call holds every history that still has a chunk.
    assert model.calls == [(1, 5), (1, 4), (1, 3), (1, 1), (1, 1)]
    for history, result in zip(histories, primed, strict=True):
        assert_same_bits(result, prime_alone(history, 1))
    await batcher.close()


async def test_a_forecast_that_arrives_while_a_prime_is_in_flight_joins_the_next_call() -> None:
    model = PrimeToy()
    batcher = RowBatcher(model)
    early, late = series(4 * CHUNK, seed=1), series(CHUNK + 2, seed=2)

    first, second = await asyncio.gather(
        prime(batcher, 1, early),
        prime(batcher, 1, late, start=model.started),  # once the first call is out
    )

    # Chunk 2 of the early one and chunk 1 of the late one share a call, then chunks 3 and 2;
    # the early one's last chunk goes alone.
    assert model.calls == [(1, 1), (1, 2), (1, 2), (1, 1)]
    assert_same_bits(first, prime_alone(early, 1))
    assert_same_bits(second, prime_alone(late, 1))
    await batcher.close()


async def test_primes_on_different_versions_go_in_calls_of_their_own() -> None:
    model = PrimeToy()
    batcher = RowBatcher(model)
    history = series(2 * CHUNK, seed=3)

    results = await asyncio.gather(*(prime(batcher, v, history) for v in (1, 2, 1, 2, 2)))

    assert sorted(model.calls) == [(1, 2), (1, 2), (2, 3), (2, 3)]
    for version, result in zip((1, 2, 1, 2, 2), results, strict=True):
        assert_same_bits(result, prime_alone(history, version))
    await batcher.close()


async def test_one_row_per_call_sends_each_forecast_on_its_own_at_once() -> None:
    # --max_generation_batch=1: the unbatched baseline; the forecasts still run side by side.
    model = PrimeToy()
    batcher = RowBatcher(model, max_batch_size=1)
    histories = [series(2 * CHUNK, seed=n) for n in range(4)]

    primed = await asyncio.gather(*(prime(batcher, 1, history) for history in histories))

    assert model.calls == [(1, 1)] * 8
    assert model.most_in_flight == 4
    for history, result in zip(histories, primed, strict=True):
        assert_same_bits(result, prime_alone(history, 1))
    await batcher.close()


async def test_a_failed_prime_fails_every_forecast_in_its_call() -> None:
    model = PrimeToy()

    async def unloaded(version: int, inputs: Tensors, deadline: Deadline) -> Tensors:
        if version == 1:
            raise errors.ModelNotFound("model forecaster version 1 is not loaded")
        return await model(version, inputs, deadline)

    batcher = RowBatcher(unloaded)
    history = series(CHUNK, seed=4)

    outcomes = await asyncio.gather(
        *(prime(batcher, version, history) for version in (1, 1, 2)), return_exceptions=True
    )

    assert [type(outcome) for outcome in outcomes[:2]] == [errors.ModelNotFound] * 2
    assert not isinstance(outcomes[2], BaseException)
    assert_same_bits(outcomes[2], prime_alone(history, 2))
    await batcher.close()
