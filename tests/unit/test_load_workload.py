"""The load test's requests: realistic, valid, and mixed by configurable weights; its words
known to every word2vec profile, so that it needs no failing call to find them."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from workload import (
    DEFAULT_WEIGHTS,
    WORD_POOLS,
    Workload,
    build_word_pools,
    parse_weights,
    pools_json,
    word_pools,
)

from training.corpora import load_corpus


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


@pytest.fixture(scope="module")
def vocabularies() -> dict[str, set[str]]:
    """Each training profile's word2vec vocabulary, built by training's own code."""
    from training.word2vec.config import PROFILES
    from training.word2vec.vocabulary import Vocabulary

    return {
        config.profile: set(Vocabulary.build(load_corpus(config.corpus), config.min_count).words)
        for config in PROFILES
    }


def test_word_pools_are_frequent_rare_and_analogies_of_the_corpus() -> None:
    words = word_pools()
    assert "the" in words.frequent[:5]
    assert len(words.frequent) == 200 and len(words.rare) == 200
    assert not set(words.frequent[:50]) & set(words.rare)
    assert len(words.analogies) == 200
    for positive, negative in words.analogies:
        assert len(positive) == 2 and len(negative) == 1
        assert len({*positive, *negative}) == 3  # no word cancels itself out


def test_every_pool_word_is_in_every_profiles_vocabulary(
    vocabularies: dict[str, set[str]],
) -> None:
    """By construction, so the load test asks the model about no word it lacks."""
    words = word_pools()
    pooled = {*words.frequent, *words.rare}
    pooled.update(word for positive, negative in words.analogies for word in (*positive, *negative))
    assert set(vocabularies) == {"quick", "full"}
    for profile, vocabulary in vocabularies.items():
        assert not pooled - vocabulary, f"{profile} lacks {sorted(pooled - vocabulary)}"


def test_the_word_pools_file_is_current() -> None:
    assert WORD_POOLS.read_text() == pools_json(build_word_pools()), (
        "tests/load/word_pools.json is stale: run python tests/load/workload.py"
    )


def test_requests_carry_real_data() -> None:
    workload = Workload(word_pools(), seed=3)
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
