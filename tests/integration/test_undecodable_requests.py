"""Request bytes that don't parse, sent raw over a real channel to real servers: both answer
INVALID_ARGUMENT naming the message type, log no traceback, and the gateway counts and
access-logs the call like any other."""

from __future__ import annotations

import logging

import grpc
import pytest
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2
from servers import Stack
from status_assertions import expect_exact_status
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2,
    predict_pb2,
    prediction_service_pb2,
)
from wire import Rpc, marked, rpcs, undecodable_details, with_invalid_utf8

from services.generated.gateway.v1 import gateway_pb2

pytestmark = pytest.mark.asyncio(loop_scope="session")

GATEWAY = rpcs(gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"])
# A length-delimited field 1 that claims 5 bytes and has 2: corrupt for every message type.
CORRUPT = b"\x0a\x05ab"
# Requests with proto3 strings, by RPC: each of their string fields gets invalid UTF-8.
GATEWAY_STRINGS: dict[str, Message] = {
    "Classify": gateway_pb2.ClassifyRequest(
        samples=[gateway_pb2.WineSample(named=gateway_pb2.NamedFeatures())]
    ),
    "SimilarWords": gateway_pb2.SimilarWordsRequest(),
    "GetModel": gateway_pb2.GetModelRequest(),
}
ANALOGY = gateway_pb2.SimilarWordsRequest(analogy=gateway_pb2.Analogy())
MODEL_SERVER = {
    **rpcs(prediction_service_pb2.DESCRIPTOR.services_by_name["PredictionService"]),
    **rpcs(model_service_pb2.DESCRIPTOR.services_by_name["ModelService"]),
}
# model_spec set, so that its name, signature name and version label get invalid UTF-8 too.
MODEL_SERVER_STRINGS: dict[str, Message] = {
    "Predict": predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec()),
    "GetModelMetadata": get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=model_pb2.ModelSpec()
    ),
    "GetModelStatus": get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec()),
}


def invalid_utf8(message: Message) -> bytes:
    return with_invalid_utf8(marked(message).SerializeToString())


async def expect_undecodable(channel: grpc.aio.Channel, rpc: Rpc, raw: bytes) -> None:
    """A raw request that must be refused as undecodable: without serializers, gRPC sends the
    bytes as they are."""
    if rpc.streaming:
        call = channel.unary_stream(rpc.path)(raw, timeout=10)

        async def read_all() -> None:
            async for _ in call:
                pass

        answer = read_all()
    else:
        answer = channel.unary_unary(rpc.path)(raw, timeout=10)
    await expect_exact_status(
        answer, grpc.StatusCode.INVALID_ARGUMENT, undecodable_details(rpc.request_type)
    )


async def test_the_gateway_refuses_bytes_that_dont_parse_and_counts_and_logs_them(
    private_stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    cases = [(rpc, CORRUPT) for rpc in GATEWAY]
    cases += [(rpc, invalid_utf8(message)) for rpc, message in GATEWAY_STRINGS.items()]
    cases.append(("SimilarWords", invalid_utf8(ANALOGY)))
    registry = private_stack.gateway.metrics.registry

    def refused(rpc: str) -> float:
        labels = {"rpc": rpc, "code": "INVALID_ARGUMENT"}
        return registry.get_sample_value("gateway_requests_total", labels) or 0.0

    # Access lines are DEBUG lines.
    with caplog.at_level(logging.INFO), caplog.at_level(logging.DEBUG, "services.gateway.access"):
        for rpc, raw in cases:
            before = refused(rpc)
            await expect_undecodable(private_stack.channel, GATEWAY[rpc], raw)
            assert refused(rpc) == before + 1, f"{rpc} was not counted"
    logged = [r for r in caplog.records if r.name == "services.gateway.access"]
    access = [(getattr(r, "rpc", None), getattr(r, "code", None)) for r in logged]
    assert sorted(access) == sorted((rpc, "INVALID_ARGUMENT") for rpc, _ in cases)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors


async def test_the_gateways_health_check_refuses_bytes_that_dont_parse(
    private_stack: Stack,
) -> None:
    check = rpcs(health_pb2.DESCRIPTOR.services_by_name["Health"])["Check"]
    await expect_undecodable(private_stack.channel, check, CORRUPT)


async def test_the_model_server_refuses_bytes_that_dont_parse(
    private_stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    cases = [(rpc, CORRUPT) for rpc in MODEL_SERVER]
    cases += [(rpc, invalid_utf8(message)) for rpc, message in MODEL_SERVER_STRINGS.items()]
    async with grpc.aio.insecure_channel(f"localhost:{private_stack.model_server.port}") as channel:
        with caplog.at_level(logging.INFO):
            for rpc, raw in cases:
                await expect_undecodable(channel, MODEL_SERVER[rpc], raw)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors
