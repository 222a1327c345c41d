"""The load test's requests: realistic, valid, and mixed by configurable weights."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from workload import DEFAULT_WEIGHTS, Workload, candidate_words, parse_weights


def test_weights_override_the_defaults_by_name() -> None:
    weights = parse_weights("classify=7, encode=0")
    assert weights["classify"] == 7 and weights["encode"] == 0
    assert weights["forecast"] == DEFAULT_WEIGHTS["forecast"]
    assert parse_weights("") == DEFAULT_WEIGHTS


@pytest.mark.parametrize(
    "text", ["clasify=1", "classify=x", "classify=-1", ",".join(f"{n}=0" for n in DEFAULT_WEIGHTS)]
)
def test_bad_weights_are_refused_with_the_reason(text: str) -> None:
    with pytest.raises(ValueError, match="--task-weights"):
        parse_weights(text)


def test_candidate_words_are_frequent_rare_and_analogies_of_the_corpus() -> None:
    words = candidate_words()
    assert "the" in words.frequent[:5]
    assert len(words.frequent) == 200 and len(words.rare) > 50
    assert not set(words.frequent[:50]) & set(words.rare)
    assert words.analogies
    for positive, negative in words.analogies:
        assert len(positive) == 2 and len(negative) == 1


def test_requests_carry_real_data() -> None:
    workload = Workload(candidate_words(), seed=3)
    classify = workload.classify()
    assert 1 <= len(classify.samples) <= 4
    for sample in classify.samples:
        values = sample.ordered.values or list(sample.named.values.values())
        assert len(values) == 13

    digits = workload.recognize_digits()
    for image in digits.images:
        with Image.open(io.BytesIO(image.encoded)) as picture:
            assert picture.format == "PNG" and picture.size[0] in (28, 56, 112)

    forecast = workload.forecast()
    assert len(forecast.history) >= 24 and 1 <= forecast.horizon <= 24
    assert min(forecast.history) > 100  # AirPassengers, in thousands

    kinds = {workload.similar_words().WhichOneof("query") for _ in range(50)}
    assert kinds == {"word", "analogy"}

    encode = workload.encode()
    assert len(encode.images) + len(encode.vectors) >= 1
    for vector in encode.vectors:
        assert len(vector.values) == 784
