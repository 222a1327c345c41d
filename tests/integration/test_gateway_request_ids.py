"""Every gateway call has a request id: sent back to the client, written on each of its JSON log
lines, and carried on to the model server calls it makes."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from servers import Stack
from sklearn.datasets import load_wine

from services.gateway.logs import REQUEST_ID_KEY, log_handler
from services.generated.gateway.v1 import gateway_pb2

pytestmark = pytest.mark.asyncio(loop_scope="session")

ACCESS_LOGGERS = ("services.gateway.access", "services.modelserver.access")


class JsonLines:
    """The log lines the production JSON handler writes while a test runs."""

    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._stream.getvalue().splitlines()]

    def of(self, logger: str) -> list[dict[str, Any]]:
        return [record for record in self.records() if record["logger"] == logger]

    async def access_lines(self, rpc: str) -> list[dict[str, Any]]:
        """The gateway's access lines of an RPC. The line is written as the call ends, which
        can come a moment after the client has its answer: wait for it, briefly."""
        for _ in range(100):
            lines = [r for r in self.of("services.gateway.access") if r["rpc"] == rpc]
            if lines:
                return lines
            await asyncio.sleep(0.02)
        return []


@pytest.fixture
def json_logs() -> Iterator[JsonLines]:
    stream = io.StringIO()
    handler = log_handler("json", stream)
    root = logging.getLogger()
    root.addHandler(handler)
    levels = {name: logging.getLogger(name).level for name in ACCESS_LOGGERS}
    for name in ACCESS_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield JsonLines(stream)
    root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def classify_request() -> gateway_pb2.ClassifyRequest:
    request = gateway_pb2.ClassifyRequest()
    request.samples.add().ordered.values.extend(load_wine().data[0].tolist())
    return request


async def classify_with(stack: Stack, metadata: tuple[tuple[str, str], ...]) -> str:
    """Calls Classify and returns the request id the gateway sent back."""
    call = stack.stub.Classify(classify_request(), timeout=10, metadata=metadata)
    await call
    trailing = dict(await call.trailing_metadata())
    return str(trailing[REQUEST_ID_KEY])


async def test_the_callers_request_id_reaches_the_logs_and_the_model_server(
    shared_stack: Stack, json_logs: JsonLines
) -> None:
    returned = await classify_with(shared_stack, ((REQUEST_ID_KEY, "trace-0042"),))
    assert returned == "trace-0042"

    [access] = await json_logs.access_lines("Classify")
    assert access["request_id"] == "trace-0042"
    assert access["code"] == "OK"
    assert access["level"] == "DEBUG"
    assert access["duration_ms"] > 0
    model_server_lines = [r["message"] for r in json_logs.of("services.modelserver.access")]
    assert any(
        line.startswith("Predict OK") and line.endswith("request_id=trace-0042")
        for line in model_server_lines
    ), model_server_lines


async def test_a_missing_or_malformed_id_is_replaced_by_a_fresh_one(shared_stack: Stack) -> None:
    fresh = await classify_with(shared_stack, ())
    assert re.fullmatch(r"[0-9a-f]{32}", fresh)
    for malformed in ("has spaces", "x" * 129, "semi;colon"):
        replaced = await classify_with(shared_stack, ((REQUEST_ID_KEY, malformed),))
        assert re.fullmatch(r"[0-9a-f]{32}", replaced)
    assert fresh != replaced


async def test_failed_calls_carry_their_id_too(shared_stack: Stack, json_logs: JsonLines) -> None:
    call = shared_stack.stub.Classify(
        gateway_pb2.ClassifyRequest(), timeout=10, metadata=((REQUEST_ID_KEY, "bad-input-1"),)
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    trailing = raised.value.trailing_metadata() or ()
    assert (REQUEST_ID_KEY, "bad-input-1") in tuple(trailing)
    [access] = await json_logs.access_lines("Classify")
    assert (access["request_id"], access["code"]) == ("bad-input-1", "INVALID_ARGUMENT")


async def test_batched_generation_steps_carry_the_ids_of_the_requests_they_serve(
    shared_stack: Stack, json_logs: JsonLines
) -> None:
    history = [float(100 + i % 12) for i in range(48)]
    ids = [f"forecast-{n}" for n in range(4)]
    await asyncio.gather(
        *(
            shared_stack.stub.Forecast(
                gateway_pb2.ForecastRequest(history=history, horizon=8),
                timeout=30,
                metadata=((REQUEST_ID_KEY, request_id),),
            )
            for request_id in ids
        )
    )
    step_calls = [
        line.rsplit("request_id=", 1)[1].split(",")
        for line in (r["message"] for r in json_logs.of("services.modelserver.access"))
        if line.startswith("Predict OK")
    ]
    seen = {request_id for call in step_calls for request_id in call}
    assert set(ids) <= seen
    # Steps of several requests went together in one call, each id listed.
    assert max(len(call) for call in step_calls) > 1
