"""The gateway's retries cannot multiply an overload: a model server that answers UNAVAILABLE
(TensorFlow Serving does so when its batching queue is full) gets a burst of at most
maxTokens / 2 retries from the gateway's channel, then about one attempt per call.

Calls go through the gateway's own model server client to a fake TensorFlow Serving that counts
the Predict calls arriving; the same calls through a channel whose service config lacks only
``retryThrottling`` show what the throttling saves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import numpy as np
import pytest
import pytest_asyncio
from fake_model_server import MODEL, VERSION, RunningFake, every_other, serve_fake
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from tensorflow_tensors import tensorflow_tensor

from services.gateway import errors
from services.gateway.backend import ModelServerClient
from services.gateway.backend_channel import RETRY_MAX_TOKENS, RETRY_TOKEN_RATIO, channel_options
from services.gateway.domain import Deadline
from services.gateway.metrics import GatewayMetrics

pytestmark = pytest.mark.asyncio(loop_scope="session")

CALLS = 400
IN_FLIGHT = 20
BURST_CALLS = RETRY_MAX_TOKENS // 2
FULL_QUEUE = "The batch scheduling queue to which this task was submitted is full"
FEATURES = np.array([[13.2, 1.8, 2.4]], np.float32)


@pytest_asyncio.fixture(loop_scope="session")
async def fake() -> AsyncIterator[RunningFake]:
    async for running in serve_fake():
        yield running


async def gateway_client_calls(port: int) -> Callable[[], Awaitable[bool]]:
    client = ModelServerClient(
        f"localhost:{port}", max_message_bytes=2**20, metrics=GatewayMetrics()
    )
    # As after the gateway's first refresh: calls go on its channel over the resolved addresses.
    await client.refresh_replicas()

    async def call() -> bool:
        try:
            await client.predict(
                MODEL, VERSION, "serving_default", {"features": FEATURES}, Deadline.after(10)
            )
        except errors.BackendUnavailable:
            return False
        return True

    return call


def unthrottled_calls(port: int) -> Callable[[], Awaitable[bool]]:
    """The gateway's channel options with ``retryThrottling`` left out, nothing else changed."""
    options = dict(channel_options(2**20))
    config = json.loads(options["grpc.service_config"])
    del config["retryThrottling"]
    options["grpc.service_config"] = json.dumps(config)
    channel = grpc.aio.insecure_channel(f"localhost:{port}", options=list(options.items()))
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "serving_default"
    request.inputs["features"].CopyFrom(tensorflow_tensor(FEATURES))

    async def call() -> bool:
        try:
            await stub.Predict(request, timeout=10)
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE
            return False
        return True

    return call


async def arrivals_per_call(
    fake: RunningFake, call: Callable[[], Awaitable[bool]], calls: int
) -> tuple[float, int]:
    """Calls arriving at the fake per call made, and how many calls succeeded; IN_FLIGHT
    calls at a time, as concurrent requests to the gateway make them."""
    before = fake.servicer.predict_calls
    succeeded = 0
    for _ in range(calls // IN_FLIGHT):
        succeeded += sum(await asyncio.gather(*(call() for _ in range(IN_FLIGHT))))
    return (fake.servicer.predict_calls - before) / calls, succeeded


async def test_a_backend_refusing_every_call_gets_three_attempts_per_call_without_throttling(
    fake: RunningFake,
) -> None:
    fake.servicer.fail_always(grpc.StatusCode.UNAVAILABLE, FULL_QUEUE)
    ratio, succeeded = await arrivals_per_call(fake, unthrottled_calls(fake.port), CALLS)
    print(f"always UNAVAILABLE, unthrottled: {ratio:.2f} calls arrive per call made")
    assert (ratio, succeeded) == (3.0, 0)


async def test_a_backend_refusing_every_call_gets_one_attempt_per_call_once_tokens_are_spent(
    fake: RunningFake,
) -> None:
    fake.servicer.fail_always(grpc.StatusCode.UNAVAILABLE, FULL_QUEUE)
    call = await gateway_client_calls(fake.port)
    # Each call's first attempt alone spends a token, so these calls spend the burst allowance.
    burst, _ = await arrivals_per_call(fake, call, BURST_CALLS)
    after, succeeded = await arrivals_per_call(fake, call, CALLS)
    print(
        f"always UNAVAILABLE, throttled: {burst:.2f} calls arrive per call made over the first "
        f"{BURST_CALLS} calls, {after:.2f} over the next {CALLS}"
    )
    # Retries stop once the failures have spent half the tokens, and do not come back while
    # nothing succeeds.
    assert (burst - 1) * BURST_CALLS < RETRY_MAX_TOKENS / 2
    assert (after, succeeded) == (1.0, 0)


async def test_a_backend_at_twice_its_capacity_gets_little_more_than_the_calls_made(
    fake: RunningFake,
) -> None:
    """Half the calls refused: without throttling each refused call comes back (and more load
    makes more refusals). With it, the retries are at most the burst allowance plus tokenRatio
    of the successes, so once the allowance is spent, about one call arrives per call made."""
    fake.servicer.fail = every_other(grpc.StatusCode.UNAVAILABLE, FULL_QUEUE)
    unthrottled, _ = await arrivals_per_call(fake, unthrottled_calls(fake.port), CALLS)
    call = await gateway_client_calls(fake.port)
    onset, onset_succeeded = await arrivals_per_call(fake, call, 2 * RETRY_MAX_TOKENS)
    then, succeeded = await arrivals_per_call(fake, call, CALLS)
    print(
        f"every other call UNAVAILABLE: {unthrottled:.2f} calls arrive per call made "
        f"unthrottled; throttled {onset:.2f} over the first {2 * RETRY_MAX_TOKENS} calls, "
        f"then {then:.2f} ({succeeded} of {CALLS} succeeded)"
    )
    assert unthrottled > 1.6
    retries = (onset - 1) * 2 * RETRY_MAX_TOKENS + (then - 1) * CALLS
    allowed = RETRY_MAX_TOKENS / 2 + RETRY_TOKEN_RATIO * (onset_succeeded + succeeded)
    assert retries <= allowed + IN_FLIGHT  # calls in flight may each retry once at the edge
    assert then < 1.15
