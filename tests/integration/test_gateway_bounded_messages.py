"""A request that carries a 20 kB name gets its real error, with a short message naming the
field, over a real channel: a message echoing the whole name would overflow the client's
metadata limit, and the client would see RESOURCE_EXHAUSTED "Stream removed" instead."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from fake_model_server import serve_fake
from status_assertions import expect_status

from services.common.bounded import MESSAGE_BYTES
from services.gateway import errors
from services.gateway.metrics import GatewayMetrics
from services.gateway.server import start_gateway
from services.gateway.settings import GatewaySettings
from services.gateway.transport.rpc_layer import RpcLayer
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc

pytestmark = pytest.mark.asyncio(loop_scope="session")

HUGE = 20_000
# Plain ASCII, and characters that percent-encode to 6 and 12 bytes each in the trailer.
NAMES = {"ascii": "n" * HUGE, "accented": "é" * HUGE, "emoji": "🍷" * HUGE}


@pytest_asyncio.fixture(loop_scope="session")
async def stub() -> AsyncIterator[gateway_pb2_grpc.GatewayServiceStub]:
    async for fake in serve_fake():
        gateway = await start_gateway(
            GatewaySettings(port=0, model_server=f"localhost:{fake.port}", metrics_port=0)
        )
        async with grpc.aio.insecure_channel(f"localhost:{gateway.port}") as channel:
            yield gateway_pb2_grpc.GatewayServiceStub(channel)
        await gateway.stop(0)


def assert_short(details: str, name: str) -> None:
    assert len(details.encode()) <= MESSAGE_BYTES, len(details.encode())
    assert f"{name[:64]}… ({HUGE} characters)" in details


@pytest.mark.parametrize("name", list(NAMES.values()), ids=list(NAMES))
async def test_an_unknown_feature_with_a_huge_name_is_named_shortly(
    stub: gateway_pb2_grpc.GatewayServiceStub, name: str
) -> None:
    request = gateway_pb2.ClassifyRequest()
    request.samples.add().named.values[name] = 1.0
    details = await expect_status(
        stub.Classify(request, timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT,
        'samples[0].named.values["',
        "unknown feature; expected names are alcohol, malic_acid, ash",
    )
    assert_short(details, name)


@pytest.mark.parametrize("name", list(NAMES.values()), ids=list(NAMES))
async def test_get_model_with_a_huge_name_is_not_found_shortly(
    stub: gateway_pb2_grpc.GatewayServiceStub, name: str
) -> None:
    details = await expect_status(
        stub.GetModel(gateway_pb2.GetModelRequest(name=name), timeout=10),
        grpc.StatusCode.NOT_FOUND,
        "no model named '",
        "the gateway fronts autoencoder, classifier, cnn, forecaster, word2vec",
    )
    assert_short(details, name)


class EchoesWhole(gateway_pb2_grpc.GatewayServiceServicer):
    """A handler whose message echoes a value whole, as a future one might forget not to."""

    async def GetModel(
        self, request: gateway_pb2.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.GetModelResponse:
        raise errors.InvalidInput("name", f"{request.name!r} is not a model name")


@pytest_asyncio.fixture(loop_scope="session")
async def echoing() -> AsyncIterator[gateway_pb2_grpc.GatewayServiceStub]:
    server = grpc.aio.server(interceptors=[RpcLayer(GatewayMetrics())])
    gateway_pb2_grpc.add_GatewayServiceServicer_to_server(EchoesWhole(), server)
    port = server.add_insecure_port("localhost:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"localhost:{port}") as channel:
        yield gateway_pb2_grpc.GatewayServiceStub(channel)
    await server.stop(None)


@pytest.mark.parametrize("name", list(NAMES.values()), ids=list(NAMES))
async def test_the_abort_path_bounds_a_message_that_echoes_a_value_whole(
    echoing: gateway_pb2_grpc.GatewayServiceStub, name: str
) -> None:
    details = await expect_status(
        echoing.GetModel(gateway_pb2.GetModelRequest(name=name), timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT,
        f"name: '{name[:100]}",
    )
    assert len(details.encode()) <= MESSAGE_BYTES
    assert details.endswith("…")
