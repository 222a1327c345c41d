"""Hostile and degenerate client input over the wire: each is INVALID_ARGUMENT naming the field
and the reason, never INTERNAL, UNKNOWN or an answer that is wrong (inf, nan, words at score 0)."""

from __future__ import annotations

import io
import math
import struct
import zlib

import grpc
import numpy as np
import pytest
from PIL import Image, ImageDraw
from png_bytes import chunk, header_only_png
from servers import Stack
from status_assertions import expect_status

from services.generated.gateway.v1 import gateway_pb2

pytestmark = pytest.mark.asyncio(loop_scope="session")

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def corrupt_after_first_idat() -> bytes:
    """A drawn digit whose pixel data is split over two IDAT chunks, with a chunk whose type
    is not four letters between them: Pillow raises SyntaxError while decoding."""
    image = Image.new("L", (60, 80), 255)
    ImageDraw.Draw(image).line([(10, 10), (50, 10), (30, 70)], fill=0, width=8)
    rows = b"".join(b"\x00" + row.tobytes() for row in np.asarray(image))
    compressed = zlib.compress(rows)
    ihdr = struct.pack(">IIBBBBB", 60, 80, 8, 0, 0, 0, 0)
    half = len(compressed) // 2
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", compressed[:half])
        + struct.pack(">I", 4)
        + b"\x00\x01\x02\x03junkjunk"
        + chunk(b"IDAT", compressed[half:])
        + chunk(b"IEND", b"")
    )


def drawn_digit() -> bytes:
    image = Image.new("L", (60, 80), 255)
    ImageDraw.Draw(image).line([(10, 10), (50, 10), (30, 70)], fill=0, width=8)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def images(*data: bytes) -> list[gateway_pb2.Image]:
    return [gateway_pb2.Image(encoded=item) for item in data]


# RecognizeDigits and Encode


@pytest.mark.parametrize(
    ("pictures", "details"),
    [
        (
            [drawn_digit(), corrupt_after_first_idat()],
            "images[1].encoded: the image data is truncated or corrupt",
        ),
        (
            [header_only_png(20_000, 20_000)],
            "images[0].encoded: 20000x20000 pixels is over the limit of 16777216 pixels",
        ),
        (
            # Each is within the per-image limit; five of them are not within the request's.
            [header_only_png(4096, 4096)] * 5,
            "images: 83886080 pixels in all is over the limit of 67108864 pixels per request",
        ),
    ],
    ids=["corrupt-chunk", "decompression-bomb", "request-pixels"],
)
async def test_hostile_pictures_are_invalid_argument(
    shared_stack: Stack, pictures: list[bytes], details: str
) -> None:
    stub = shared_stack.stub
    await expect_status(
        stub.RecognizeDigits(
            gateway_pb2.RecognizeDigitsRequest(images=images(*pictures)), timeout=30
        ),
        INVALID,
        details,
    )
    await expect_status(
        stub.Encode(gateway_pb2.EncodeRequest(images=images(*pictures)), timeout=30),
        INVALID,
        details,
    )


# Forecast and StreamForecast

HUGE_HISTORY = [3e38] * 36  # finite float32 values, but the forecast after them overflows
METHODS = [gateway_pb2.GENERATION_METHOD_STATEFUL, gateway_pb2.GENERATION_METHOD_WINDOW]


@pytest.mark.parametrize("method", METHODS, ids=["stateful", "window"])
async def test_a_forecast_that_would_overflow_float32_is_refused(
    shared_stack: Stack, method: int
) -> None:
    request = gateway_pb2.ForecastRequest(history=HUGE_HISTORY, horizon=12, method=method)
    await expect_status(
        shared_stack.stub.Forecast(request, timeout=30),
        INVALID,
        "history: the forecast after these values is not a finite float32 number at step ",
        "too large for this model",
    )


@pytest.mark.parametrize("method", METHODS, ids=["stateful", "window"])
async def test_a_stream_ends_with_invalid_argument_before_a_value_that_is_not_finite(
    shared_stack: Stack, method: int
) -> None:
    request = gateway_pb2.StreamForecastRequest(history=HUGE_HISTORY, horizon=12, method=method)
    stream = shared_stack.stub.StreamForecast(request, timeout=30)
    values = []
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for point in stream:
            values.append(point.value)
    assert raised.value.code() == INVALID, raised.value.details()
    assert (raised.value.details() or "").startswith(
        "history: the forecast after these values is not a finite float32 number at step "
    )
    assert len(values) < 12
    assert all(math.isfinite(value) for value in values)


async def test_values_beyond_float32_are_refused_before_any_model_call(
    shared_stack: Stack,
) -> None:
    request = gateway_pb2.ForecastRequest(history=[100.0, 1e39], horizon=3)
    await expect_status(
        shared_stack.stub.Forecast(request, timeout=30),
        INVALID,
        "history[1]: must be a finite float32 number (magnitude at most 3.4028235e+38), got 1e+39",
    )


async def test_a_large_history_within_the_models_range_is_still_forecast(
    shared_stack: Stack,
) -> None:
    # The model works on the logarithm: a series in the billions is forecast like any other.
    history = [value * 1e9 for value in (112.0, 118.0, 132.0, 129.0, 121.0, 135.0) * 6]
    response = await shared_stack.stub.Forecast(
        gateway_pb2.ForecastRequest(history=history, horizon=12), timeout=30
    )
    assert len(response.values) == 12
    assert all(math.isfinite(value) and value > 1e10 for value in response.values)


# SimilarWords


def analogy(positive: list[str], negative: list[str]) -> gateway_pb2.SimilarWordsRequest:
    return gateway_pb2.SimilarWordsRequest(
        analogy=gateway_pb2.Analogy(positive=positive, negative=negative), k=3
    )


@pytest.mark.parametrize(
    ("positive", "negative", "details"),
    [
        (
            ["government"],
            ["government"],
            "analogy: 'government' (positive[0]) and 'government' (negative[0]) are one word",
        ),
        (
            ["Government"],
            ["government,"],
            "analogy: 'Government' (positive[0]) and 'government,' (negative[0]) are one word",
        ),
        (
            ["minister", "israeli", "government"],
            ["australia", "government"],
            "analogy: 'government' (positive[2]) and 'government' (negative[1]) are one word",
        ),
    ],
    ids=["itself", "normalised-alike", "among-others"],
)
async def test_analogy_words_that_cancel_out_are_invalid_argument(
    shared_stack: Stack, positive: list[str], negative: list[str], details: str
) -> None:
    await expect_status(
        shared_stack.stub.SimilarWords(analogy(positive, negative), timeout=30),
        INVALID,
        details,
        "cancels itself out",
    )


async def test_an_unknown_word_in_an_analogy_is_still_not_found(shared_stack: Stack) -> None:
    await expect_status(
        shared_stack.stub.SimilarWords(analogy(["minister", "zzyzx"], ["zzyzx"]), timeout=30),
        grpc.StatusCode.NOT_FOUND,
        "analogy.positive[1]: unknown word 'zzyzx'",
    )


async def test_a_word_repeated_on_one_side_weighs_more(shared_stack: Stack) -> None:
    response = await shared_stack.stub.SimilarWords(
        analogy(["minister", "minister"], ["australia"]), timeout=30
    )
    assert len(response.neighbors) == 3
    assert all(neighbor.score > 0.05 for neighbor in response.neighbors)
