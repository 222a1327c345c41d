"""Realistic requests for every gateway RPC, from the data sets the models learned from.

Wine rows from scikit-learn's wine data, MNIST digits encoded as PNG files of various sizes,
AirPassengers history windows, frequent and rare words of the Lee corpus, and the analogies of
gensim's `questions-words.txt`. Everything is read once per process; building a request is cheap.

The words come from `word_pools.json`, which holds only words that every word2vec profile's
vocabulary has by construction: a training profile keeps the words of its corpus seen at least
`min_count` times (training/word2vec/), so the pools keep the Lee words that both corpora have
that often. The load test therefore never asks the model which words it knows, and none of its
calls is a NOT_FOUND. The file is written from the corpora, which the loadtest image lacks:

    python tests/load/workload.py [--check]
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import random
import sys
import textwrap
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_wine

from services.generated.gateway.v1 import gateway_pb2
from training.contracts import autoencoder, classifier, cnn, forecaster, word2vec
from training.corpora import LEE, load_corpus, normalize_word
from training.mnist import load_mnist_split
from training.series import load_airpassengers_split

DIGIT_SIZES = (28, 56, 112)  # pixels per side of the PNG files sent
MAX_SAMPLES = 4  # rows or images in one request
FREQUENT_WORDS = 200
RARE_WORDS = 200
ANALOGIES = 200
RARE_COUNTS = range(5, 9)  # how often a rare word occurs in the Lee corpus
WORD_POOLS = Path(__file__).with_name("word_pools.json")

# Relative weights of the RPCs; --task-weights overrides any of them ("classify=5,encode=0").
DEFAULT_WEIGHTS = {
    "classify": 4,
    "recognize_digits": 3,
    "forecast": 2,
    "stream_forecast": 1,
    "similar_words": 3,
    "encode": 2,
    "list_models": 1,
    "get_model": 1,
}


@dataclass(frozen=True)
class Words:
    """The words and analogies SimilarWords is asked about."""

    frequent: tuple[str, ...]
    rare: tuple[str, ...]
    analogies: tuple[tuple[tuple[str, str], tuple[str]], ...]  # (positive, negative)


class Workload:
    """Builds requests; one per user, each with its own random stream."""

    def __init__(self, words: Words, seed: int | None = None) -> None:
        self._random = random.Random(seed)
        self.words = words

    def classify(self) -> gateway_pb2.ClassifyRequest:
        wine = _wine()
        request = gateway_pb2.ClassifyRequest()
        for row in self._random.sample(range(len(wine.data)), self._random.randint(1, MAX_SAMPLES)):
            sample = request.samples.add()
            if self._random.random() < 0.5:
                sample.ordered.values.extend(wine.data[row].tolist())
            else:
                names = wine.feature_names
                sample.named.values.update(zip(names, wine.data[row].tolist(), strict=True))
        return request

    def recognize_digits(self) -> gateway_pb2.RecognizeDigitsRequest:
        images = self._random.sample(_digit_pngs(), self._random.randint(1, MAX_SAMPLES))
        return gateway_pb2.RecognizeDigitsRequest(
            images=[gateway_pb2.Image(encoded=png) for png in images]
        )

    def forecast(self) -> gateway_pb2.ForecastRequest:
        history, horizon = self._history_and_horizon()
        return gateway_pb2.ForecastRequest(history=history, horizon=horizon)

    def stream_forecast(self) -> gateway_pb2.StreamForecastRequest:
        history, horizon = self._history_and_horizon()
        return gateway_pb2.StreamForecastRequest(history=history, horizon=horizon)

    def similar_words(self) -> gateway_pb2.SimilarWordsRequest:
        k = self._random.randint(1, 10)
        draw = self._random.random()
        if draw < 0.2 and self.words.analogies:
            positive, negative = self._random.choice(self.words.analogies)
            analogy = gateway_pb2.Analogy(positive=positive, negative=negative)
            return gateway_pb2.SimilarWordsRequest(analogy=analogy, k=k)
        pool = self.words.rare if draw < 0.5 and self.words.rare else self.words.frequent
        return gateway_pb2.SimilarWordsRequest(word=self._random.choice(pool), k=k)

    def encode(self) -> gateway_pb2.EncodeRequest:
        count = self._random.randint(1, MAX_SAMPLES)
        with_error = self._random.random() < 0.5
        request = gateway_pb2.EncodeRequest(include_reconstruction_error=with_error)
        if self._random.random() < 0.5:
            request.images.extend(
                gateway_pb2.Image(encoded=png) for png in self._random.sample(_digit_pngs(), count)
            )
        else:
            pixels = _mnist_pixels()
            for index in self._random.sample(range(len(pixels)), count):
                request.vectors.add().values.extend(pixels[index])
        return request

    def get_model(self) -> gateway_pb2.GetModelRequest:
        names = (
            classifier.MODEL_NAME,
            cnn.MODEL_NAME,
            forecaster.MODEL_NAME,
            word2vec.MODEL_NAME,
            autoencoder.MODEL_NAME,
        )
        return gateway_pb2.GetModelRequest(name=self._random.choice(names))

    def _history_and_horizon(self) -> tuple[list[float], int]:
        series = _passengers()
        length = self._random.randint(24, len(series))
        start = self._random.randint(0, len(series) - length)
        return series[start : start + length], self._random.randint(1, 24)


def load_data() -> None:
    """Reads every data set now (MNIST takes seconds), before the users start, rather than in
    the first call that needs it."""
    _wine()
    _passengers()
    _mnist_pixels()
    _digit_pngs()
    word_pools()


def parse_weights(text: str) -> dict[str, int]:
    """The default weights with the overrides of a "name=weight,..." text applied."""
    weights = dict(DEFAULT_WEIGHTS)
    for pair in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = pair.partition("=")
        if name not in weights or not value.isdigit():
            raise ValueError(f"--task-weights: {pair!r} is not one of {sorted(weights)}=<int>")
        weights[name] = int(value)
    if not any(weights.values()):
        raise ValueError("--task-weights: at least one weight must be above 0")
    return weights


@functools.cache
def word_pools() -> Words:
    """The pools of `word_pools.json`: words every word2vec profile knows."""
    pools = json.loads(WORD_POOLS.read_text())
    return Words(
        frequent=tuple(pools["frequent"]),
        rare=tuple(pools["rare"]),
        analogies=tuple(
            ((positive[0], positive[1]), (negative[0],))
            for positive, negative in pools["analogies"]
        ),
    )


def build_word_pools() -> Words:
    """Frequent and rare words of the Lee corpus, and analogies among its words, each word in
    the vocabulary of every training profile. Needs the corpora and training's code (and so
    TensorFlow), which the loadtest image lacks: `word_pools.json` holds the result."""
    from training.word2vec.config import PROFILES
    from training.word2vec.vocabulary import Vocabulary

    vocabularies = [
        set(Vocabulary.build(load_corpus(config.corpus), config.min_count).words)
        for config in PROFILES
    ]
    known = set.intersection(*vocabularies)
    counts = Counter(word for document in load_corpus(LEE).documents for word in document)
    ranked = [word for word, _ in counts.most_common() if word.isalpha() and word in known]
    rare = [word for word in ranked if counts[word] in RARE_COUNTS]
    analogies = []
    for line in _questions_words().read_text().splitlines():
        parts = line.split()
        if line.startswith(":") or len(parts) != 4:
            continue
        a, b, c, _ = (normalize_word(word) for word in parts)
        # Three distinct words: one on both sides would cancel itself out (INVALID_ARGUMENT).
        if len({a, b, c}) == 3 and {a, b, c} <= known:
            analogies.append(((b, c), (a,)))  # b - a + c
    return Words(
        frequent=tuple(ranked[:FREQUENT_WORDS]),
        rare=tuple(random.Random(0).sample(rare, min(RARE_WORDS, len(rare)))),
        analogies=tuple(analogies[:ANALOGIES]),
    )


def pools_json(words: Words) -> str:
    """`word_pools.json`'s text for these pools: JSON, wrapped to be read and diffed."""
    about = (
        "Words every word2vec profile's vocabulary holds; written by "
        "`python tests/load/workload.py` (build_word_pools)."
    )
    analogies = [
        json.dumps([list(positive), list(negative)]) for positive, negative in words.analogies
    ]
    lines = ["{", f'"about": {json.dumps(about)},']
    for name, items in (
        ("frequent", [json.dumps(word) for word in words.frequent]),
        ("rare", [json.dumps(word) for word in words.rare]),
    ):
        lines += [f'"{name}": [', *textwrap.wrap(", ".join(items), 99), "],"]
    lines += ['"analogies": [', ",\n".join(analogies), "]", "}"]
    return "\n".join(lines) + "\n"


def _questions_words() -> Path:
    # Here, not at the top: only `build_word_pools` reads it, and importing gensim costs every
    # Locust process half a second.
    import gensim

    return Path(gensim.__file__).parent / "test" / "test_data" / "questions-words.txt"


@functools.cache
def _wine() -> object:
    return load_wine()


@functools.cache
def _passengers() -> list[float]:
    split = load_airpassengers_split()
    return [float(value) for value in np.concatenate([split.train, split.test])]


@functools.cache
def _mnist_pixels() -> list[list[float]]:
    images = load_mnist_split().x_test[:500]
    return [image.reshape(-1).tolist() for image in images]


@functools.cache
def _digit_pngs() -> list[bytes]:
    """MNIST test digits as PNG files: as scanned (dark on light) or as MNIST stores them,
    at a few sizes, as phones and forms would send them."""
    chooser = random.Random(1)
    pngs = []
    for image in load_mnist_split().x_test[:300]:
        grey = np.asarray(image * 255, dtype=np.uint8)
        if chooser.random() < 0.5:
            grey = 255 - grey
        size = chooser.choice(DIGIT_SIZES)
        buffer = io.BytesIO()
        Image.fromarray(grey).resize((size, size)).save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    return pngs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tests/load/workload.py", description="Writes tests/load/word_pools.json."
    )
    parser.add_argument("--check", action="store_true", help="only say whether it is current")
    options = parser.parse_args(argv)
    text = pools_json(build_word_pools())
    current = WORD_POOLS.exists() and WORD_POOLS.read_text() == text
    if options.check:
        print(f"{WORD_POOLS} is {'current' if current else 'stale: run without --check'}")
        return 0 if current else 1
    WORD_POOLS.write_text(text)
    print(f"wrote {WORD_POOLS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
