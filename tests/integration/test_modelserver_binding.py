"""The model server listens on localhost unless told otherwise: its gRPC and REST ports are not
reachable at another address of the machine until --host opens them."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from addresses import OTHER_ADDRESS, tcp_connects
from servers import start_model_server_for
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

from benchmarks.stack import free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def status_from(address: str, port: int) -> grpc.StatusCode:
    async with grpc.aio.insecure_channel(f"{address}:{port}") as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "classifier"
        try:
            await stub.GetModelStatus(request, timeout=3)
        except grpc.RpcError as error:
            return error.code()
        return grpc.StatusCode.OK


async def test_by_default_only_this_machine_reaches_the_model_server(
    classifier_repository: Path,
) -> None:
    address = OTHER_ADDRESS
    server = await start_model_server_for(classifier_repository, rest_api_port=free_port())
    try:
        assert await status_from("localhost", server.port) == grpc.StatusCode.OK
        assert await status_from(address, server.port) == grpc.StatusCode.UNAVAILABLE
        assert server.rest_port is not None
        assert tcp_connects("127.0.0.1", server.rest_port)
        assert not tcp_connects(address, server.rest_port)
    finally:
        await server.stop(0)


async def test_host_opens_both_ports_to_every_interface(classifier_repository: Path) -> None:
    address = OTHER_ADDRESS
    server = await start_model_server_for(
        classifier_repository, host="0.0.0.0", rest_api_port=free_port()
    )
    try:
        assert await status_from(address, server.port) == grpc.StatusCode.OK
        assert server.rest_port is not None and tcp_connects(address, server.rest_port)
    finally:
        await server.stop(0)
