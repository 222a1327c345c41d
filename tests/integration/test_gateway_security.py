"""TLS, mutual TLS and bearer tokens on the gateway's port, with certificates made in the test."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from certificates import CertificateAuthority
from client_cli import run_client
from grpc_health.v1 import health_pb2, health_pb2_grpc
from servers import start_model_server_for
from status_assertions import expect_status

from services.gateway.server import GatewayHandle, start_gateway
from services.gateway.settings import GatewaySettings
from services.gateway.tls import TlsConfigError
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.modelserver.server import ModelServerHandle

pytestmark = pytest.mark.asyncio(loop_scope="session")

TOKEN = "s3cret-token"
WINE_ROW = [13.2, 1.78, 2.14, 11.2, 100, 2.65, 2.76, 0.26, 1.28, 4.38, 1.05, 3.4, 1050]
StartGateway = Callable[..., Any]


@pytest_asyncio.fixture(loop_scope="session")
async def model_server(classifier_repository: Path) -> AsyncIterator[ModelServerHandle]:
    server = await start_model_server_for(classifier_repository)
    yield server
    await server.stop(0)


@pytest_asyncio.fixture(loop_scope="session")
async def gateway_with(model_server: ModelServerHandle) -> AsyncIterator[StartGateway]:
    """Starts gateways in front of the model server with extra settings; stops them after."""
    started: list[GatewayHandle] = []

    async def start(**settings: Any) -> GatewayHandle:
        gateway = await start_gateway(
            GatewaySettings(
                port=0,
                model_server=f"localhost:{model_server.port}",
                metrics_port=0,
                model_refresh_s=0.2,
                **settings,
            )
        )
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        await gateway.stop(0)


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path, "trusted")


def classify_request() -> gateway_pb2.ClassifyRequest:
    request = gateway_pb2.ClassifyRequest()
    request.samples.add().ordered.values.extend(WINE_ROW)
    return request


def tls_channel(
    port: int, ca_file: Path, cert_file: Path | None = None, key_file: Path | None = None
) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca_file.read_bytes(),
        private_key=key_file.read_bytes() if key_file else None,
        certificate_chain=cert_file.read_bytes() if cert_file else None,
    )
    return grpc.aio.secure_channel(f"localhost:{port}", credentials)


async def classify_on(channel: grpc.aio.Channel, **call: Any) -> gateway_pb2.ClassifyResponse:
    async with channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        response: gateway_pb2.ClassifyResponse = await stub.Classify(
            classify_request(), timeout=10, wait_for_ready=False, **call
        )
        return response


async def test_tls_serves_clients_that_trust_its_ca_and_refuses_plaintext(
    gateway_with: StartGateway, ca: CertificateAuthority
) -> None:
    server = ca.issue_server()
    gateway = await gateway_with(tls_cert_file=server.cert_file, tls_key_file=server.key_file)

    response = await classify_on(tls_channel(gateway.port, ca.cert_file))
    assert response.model.name == "classifier"

    await expect_status(
        classify_on(grpc.aio.insecure_channel(f"localhost:{gateway.port}")),
        grpc.StatusCode.UNAVAILABLE,
    )


async def test_mutual_tls_needs_a_client_certificate_from_the_client_ca(
    gateway_with: StartGateway, ca: CertificateAuthority, tmp_path: Path
) -> None:
    server = ca.issue_server()
    gateway = await gateway_with(
        tls_cert_file=server.cert_file,
        tls_key_file=server.key_file,
        tls_client_ca_file=ca.cert_file,
    )
    client = ca.issue_client()
    stranger = CertificateAuthority(tmp_path, "untrusted").issue_client()

    response = await classify_on(
        tls_channel(gateway.port, ca.cert_file, client.cert_file, client.key_file)
    )
    assert response.model.name == "classifier"

    await expect_status(
        classify_on(tls_channel(gateway.port, ca.cert_file)), grpc.StatusCode.UNAVAILABLE
    )
    await expect_status(
        classify_on(tls_channel(gateway.port, ca.cert_file, stranger.cert_file, stranger.key_file)),
        grpc.StatusCode.UNAVAILABLE,
    )


async def test_a_rotated_certificate_is_served_without_a_restart(
    gateway_with: StartGateway, ca: CertificateAuthority, tmp_path: Path
) -> None:
    server = ca.issue_server()
    gateway = await gateway_with(tls_cert_file=server.cert_file, tls_key_file=server.key_file)
    await classify_on(tls_channel(gateway.port, ca.cert_file))

    # The certificate is replaced in place by one from a new CA, as a Secret volume update does.
    new_ca = CertificateAuthority(tmp_path, "rotated")
    replacement = new_ca.issue_server()
    server.key_file.write_bytes(replacement.key())
    server.cert_file.write_bytes(replacement.cert())
    later = os.stat(server.cert_file).st_mtime_ns + 1_000_000_000
    os.utime(server.cert_file, ns=(later, later))

    response = await classify_on(tls_channel(gateway.port, new_ca.cert_file))
    assert response.model.name == "classifier"
    await expect_status(
        classify_on(tls_channel(gateway.port, ca.cert_file)), grpc.StatusCode.UNAVAILABLE
    )


async def test_mismatched_certificate_and_key_fail_at_start_naming_the_files(
    ca: CertificateAuthority,
) -> None:
    first, second = ca.issue_server("first"), ca.issue_server("second")
    with pytest.raises(TlsConfigError, match=r"tls_cert_file .*first\.pem and tls_key_file"):
        await start_gateway(
            GatewaySettings(
                port=0, metrics_port=0, tls_cert_file=first.cert_file, tls_key_file=second.key_file
            )
        )


async def test_the_token_is_required_on_every_rpc_but_health(gateway_with: StartGateway) -> None:
    gateway = await gateway_with(auth_token=TOKEN)
    channel = grpc.aio.insecure_channel(f"localhost:{gateway.port}")
    stub = gateway_pb2_grpc.GatewayServiceStub(channel)
    right = (("authorization", f"Bearer {TOKEN}"),)

    response = await stub.Classify(classify_request(), timeout=10, metadata=right)
    assert response.model.name == "classifier"

    await expect_status(
        stub.Classify(classify_request(), timeout=10),
        grpc.StatusCode.UNAUTHENTICATED,
        "missing 'authorization: Bearer <token>'",
    )
    for wrong in (f"Bearer {TOKEN}x", "Bearer ", f"Basic {TOKEN}", TOKEN[:-1]):
        await expect_status(
            stub.Classify(classify_request(), timeout=10, metadata=(("authorization", wrong),)),
            grpc.StatusCode.UNAUTHENTICATED,
        )
    stream = stub.StreamForecast(
        gateway_pb2.StreamForecastRequest(history=[1.0] * 30, horizon=3), timeout=10
    )
    await expect_status(_drain(stream), grpc.StatusCode.UNAUTHENTICATED, "Bearer")
    await expect_status(
        stub.ListModels(gateway_pb2.ListModelsRequest(), timeout=10),
        grpc.StatusCode.UNAUTHENTICATED,
    )

    health = health_pb2_grpc.HealthStub(channel)
    answer = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert answer.status in (
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
    )
    await channel.close()

    refused = gateway.metrics.requests.labels("Classify", "UNAUTHENTICATED")._value.get()
    assert refused == 5


async def test_a_caller_without_the_token_learns_nothing_from_bytes_that_dont_parse(
    gateway_with: StartGateway,
) -> None:
    # Authentication comes before parsing: a caller without the token is refused as such, not
    # told whether its bytes were a valid message; with the token, it is told they were not.
    gateway = await gateway_with(auth_token=TOKEN)
    async with grpc.aio.insecure_channel(f"localhost:{gateway.port}") as channel:
        classify = channel.unary_unary("/gateway.v1.GatewayService/Classify")
        corrupt = b"\x0a\x05ab"  # a field that claims 5 bytes and has 2
        await expect_status(
            classify(corrupt, timeout=10), grpc.StatusCode.UNAUTHENTICATED, "Bearer"
        )
        await expect_status(
            classify(corrupt, timeout=10, metadata=(("authorization", f"Bearer {TOKEN}"),)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "not a valid gateway.v1.ClassifyRequest message",
        )


async def test_the_client_speaks_mutual_tls_with_a_token(
    gateway_with: StartGateway, ca: CertificateAuthority
) -> None:
    server, client = ca.issue_server(), ca.issue_client()
    gateway = await gateway_with(
        tls_cert_file=server.cert_file,
        tls_key_file=server.key_file,
        tls_client_ca_file=ca.cert_file,
        auth_token=TOKEN,
    )
    tls = [
        f"--tls-ca={ca.cert_file}",
        f"--tls-cert={client.cert_file}",
        f"--tls-key={client.key_file}",
    ]
    code, output = await run_client(gateway.port, *tls, f"--token={TOKEN}", "list-models")
    assert code == 0, output
    rows = [line.split() for line in output.splitlines()]
    assert ["classifier", "Classify"] in [row[:2] for row in rows], output

    code, output = await run_client(gateway.port, *tls, "--token=wrong", "list-models")
    assert (code, output.strip()) == (1, "UNAUTHENTICATED: the bearer token is not valid")


async def test_the_client_sends_a_token_in_the_clear_only_to_this_machine(
    gateway_with: StartGateway,
) -> None:
    gateway = await gateway_with(auth_token=TOKEN)
    code, output = await run_client(gateway.port, f"--token={TOKEN}", "--json", "list-models")
    assert code == 0, output
    assert "classifier" in [model["name"] for model in json.loads(output)["models"]]


async def _drain(stream: Any) -> None:
    async for _ in stream:
        pass


async def test_the_plaintext_health_port_serves_health_checks_and_nothing_else(
    gateway_with: StartGateway, ca: CertificateAuthority
) -> None:
    server = ca.issue_server()
    gateway = await gateway_with(
        tls_cert_file=server.cert_file, tls_key_file=server.key_file, health_port=0
    )
    assert gateway.health_port is not None and gateway.health_port != gateway.port

    async with grpc.aio.insecure_channel(f"localhost:{gateway.health_port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert answer.status in (
            health_pb2.HealthCheckResponse.SERVING,
            health_pb2.HealthCheckResponse.NOT_SERVING,
        )
        # The same servicer as the TLS port: it turns NOT_SERVING as the gateway stops.
        await gateway.health.enter_graceful_shutdown()
        answer = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.NOT_SERVING

        gateway_stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        await expect_status(
            gateway_stub.Classify(classify_request(), timeout=10),
            grpc.StatusCode.UNIMPLEMENTED,
        )
