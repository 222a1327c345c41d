"""Bad input, generated: every gateway RPC answers arbitrary requests, and arbitrary mutations of
their bytes on the wire, with OK or a clear client error (INVALID_ARGUMENT, NOT_FOUND,
RESOURCE_EXHAUSTED, with details), never INTERNAL or UNKNOWN, and the gateway stays healthy with
the same memory afterwards."""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from conftest import count_case
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from wire import Mutated, mutations, rpcs, send_mutated, serialized

from benchmarks.stack import ServingStack, memory_mib
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc

pytestmark = pytest.mark.integration
settings.load_profile("reliability")

CLIENT_ERRORS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.OUT_OF_RANGE,
}
# `make reliability` asks for more cases than `make test` has time for.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
# Memory the gateway may grow by over all the fuzzing (allocator and cache noise), in MiB.
MEMORY_SLACK_MIB = 40

doubles = st.floats(allow_nan=True, allow_infinity=True, width=64)
floats32 = st.floats(allow_nan=True, allow_infinity=True, width=32)
int32s = st.integers(-(2**31), 2**31 - 1)
int64s = st.integers(-(2**63), 2**63 - 1)
words = st.text(max_size=300) | st.sampled_from(["the", "king", "", " ", "Ünïcödé", "a" * 5000])


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 255).save(buffer, format="PNG")
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size and whose data is tiny: a decompression bomb."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat_data = zlib.compress(b"\x00" * 64)
    idat = b"IDAT" + idat_data
    idat_chunk = struct.pack(">I", len(idat_data)) + idat + struct.pack(">I", zlib.crc32(idat))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + ihdr + idat_chunk + end


valid_png = png(28, 28)
images = st.one_of(
    st.builds(lambda data: gateway_pb2.Image(encoded=data), st.binary(max_size=2000)),
    st.builds(lambda cut: gateway_pb2.Image(encoded=valid_png[:cut]), st.integers(0, 200)),
    st.builds(
        lambda w, h: gateway_pb2.Image(encoded=png_claiming(w, h)),
        st.integers(1, 2**31 - 1),
        st.integers(1, 2**31 - 1),
    ),
    st.builds(
        lambda values: gateway_pb2.Image(raw=gateway_pb2.RawPixels(values=values)),
        st.lists(floats32, max_size=1000),
    ),
    st.just(gateway_pb2.Image()),
    st.just(gateway_pb2.Image(encoded=valid_png)),
)
wine_names = st.sampled_from(["alcohol", "malic_acid", "ash", "proline", "", "colour"])
samples = st.one_of(
    st.builds(
        lambda values: gateway_pb2.WineSample(ordered=gateway_pb2.OrderedFeatures(values=values)),
        st.lists(doubles, max_size=20),
    ),
    st.builds(
        lambda values: gateway_pb2.WineSample(named=gateway_pb2.NamedFeatures(values=values)),
        st.dictionaries(wine_names | st.text(max_size=20), doubles, max_size=15),
    ),
    st.just(gateway_pb2.WineSample()),
)
methods = st.integers(-5, 5)  # proto3 enums are open: unknown values arrive as they are
# Random values, or a series just over the gateway's history limit (10,000).
histories = st.lists(doubles, max_size=400) | st.builds(
    lambda length, value: [value] * length, st.integers(9_990, 10_010), st.floats(100, 600)
)
# Forecast and StreamForecast take the same fields.
forecast_fields: dict[str, st.SearchStrategy[Any]] = {
    "history": histories,
    "horizon": int32s | st.integers(-2, 300),
    "method": methods,
    "model_version": int64s,
}
requests: dict[str, st.SearchStrategy[Any]] = {
    "Classify": st.builds(
        gateway_pb2.ClassifyRequest,
        samples=st.lists(samples, max_size=6),
        model_version=int64s,
    ),
    "RecognizeDigits": st.builds(
        gateway_pb2.RecognizeDigitsRequest,
        images=st.lists(images, max_size=4),
        model_version=int64s,
    ),
    "Forecast": st.builds(gateway_pb2.ForecastRequest, **forecast_fields),
    "StreamForecast": st.builds(gateway_pb2.StreamForecastRequest, **forecast_fields),
    "SimilarWords": st.one_of(
        st.builds(gateway_pb2.SimilarWordsRequest, word=words, k=int32s | st.integers(-2, 200)),
        st.builds(
            lambda positive, negative, k: gateway_pb2.SimilarWordsRequest(
                analogy=gateway_pb2.Analogy(positive=positive, negative=negative), k=k
            ),
            st.lists(words, max_size=12),
            st.lists(words, max_size=12),
            int32s | st.integers(-2, 200),
        ),
        st.builds(gateway_pb2.SimilarWordsRequest, k=int32s, model_version=int64s),
    ),
    "Encode": st.builds(
        gateway_pb2.EncodeRequest,
        images=st.lists(images, max_size=3),
        vectors=st.lists(
            st.builds(gateway_pb2.RawPixels, values=st.lists(floats32, max_size=1000)),
            max_size=3,
        ),
        include_reconstruction_error=st.booleans(),
        model_version=int64s,
    ),
    "GetModel": st.builds(gateway_pb2.GetModelRequest, name=words),
}
RPCS = rpcs(gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"])
# What each RPC's bytes are mutated from: generated requests, or the one ListModels takes.
wire_requests = {rpc: requests.get(rpc, st.just(gateway_pb2.ListModelsRequest())) for rpc in RPCS}


@pytest.fixture(scope="module")
def gateway_channel(deployed: ServingStack) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"localhost:{deployed.gateways['default'].port}") as channel:
        yield channel


@pytest.fixture(scope="module")
def gateway(gateway_channel: grpc.Channel) -> gateway_pb2_grpc.GatewayServiceStub:
    return gateway_pb2_grpc.GatewayServiceStub(gateway_channel)


def call(stub: gateway_pb2_grpc.GatewayServiceStub, rpc: str, request: Any) -> None:
    """Sends one request; fails on anything but OK or a client error with details."""
    method: Callable[..., Any] = getattr(stub, rpc)
    count_case(f"gateway {rpc}")
    try:
        answer = method(request, timeout=30)
        if rpc == "StreamForecast":
            list(answer)
    except grpc.RpcError as error:
        assert error.code() in CLIENT_ERRORS, f"{rpc} answered {error.code()}: {error.details()}"
        assert error.details(), f"{rpc} answered {error.code()} without details"


@pytest.mark.parametrize("rpc", sorted(requests))
def test_every_rpc_refuses_bad_input_with_a_client_error(
    rpc: str, gateway: gateway_pb2_grpc.GatewayServiceStub
) -> None:
    @settings(max_examples=EXAMPLES)
    @given(request=requests[rpc])
    def fuzz(request: Any) -> None:
        call(gateway, rpc, request)

    fuzz()


@pytest.mark.parametrize("rpc", sorted(RPCS))
def test_every_rpc_refuses_mutated_bytes_with_a_client_error(
    rpc: str, gateway_channel: grpc.Channel
) -> None:
    @settings(max_examples=EXAMPLES)
    @given(mutated=serialized(wire_requests[rpc]).flatmap(mutations))
    def fuzz(mutated: Mutated) -> None:
        count_case(f"gateway {rpc} bytes")
        send_mutated(gateway_channel, RPCS[rpc], mutated, CLIENT_ERRORS)

    fuzz()


def test_an_oversize_message_is_refused_with_resource_exhausted(
    gateway: gateway_pb2_grpc.GatewayServiceStub,
) -> None:
    huge = gateway_pb2.RecognizeDigitsRequest(
        images=[gateway_pb2.Image(encoded=b"\x00" * (65 * 1024 * 1024))]
    )
    with pytest.raises(grpc.RpcError) as raised:
        gateway.RecognizeDigits(huge, timeout=30)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_the_gateway_is_healthy_with_the_same_memory_after_fuzzing(
    deployed: ServingStack, gateway: gateway_pb2_grpc.GatewayServiceStub
) -> None:
    # Runs after the fuzzing above (file order): a second round must not grow memory.
    pid = deployed.gateways["default"].child.pid
    before = memory_mib(pid, "VmRSS")

    @settings(max_examples=100)
    @given(
        rpc_and_request=st.sampled_from(sorted(requests)).flatmap(
            lambda rpc: st.tuples(st.just(rpc), requests[rpc])
        )
    )
    def again(rpc_and_request: tuple[str, Any]) -> None:
        call(gateway, *rpc_and_request)

    again()
    after = memory_mib(pid, "VmRSS")
    assert after - before < MEMORY_SLACK_MIB, f"RSS grew from {before:.0f} to {after:.0f} MiB"
    with grpc.insecure_channel(f"localhost:{deployed.gateways['default'].port}") as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=10
        )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    classify = gateway_pb2.ClassifyRequest()
    classify.samples.add().ordered.values.extend(
        [13.2, 1.78, 2.14, 11.2, 100, 2.65, 2.76, 0.26, 1.28, 4.38, 1.05, 3.4, 1050]
    )
    assert gateway.Classify(classify, timeout=10).classifications
