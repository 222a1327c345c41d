"""Realistic requests for every gateway RPC, from the data sets the models learned from.

Wine rows from scikit-learn's wine data, MNIST digits encoded as PNG files of various sizes,
AirPassengers history windows, frequent and rare words of the Lee corpus, and the analogies of
gensim's `questions-words.txt`. Everything is read once per process; building a request is cheap.
"""

from __future__ import annotations

import functools
import io
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import gensim
import numpy as np
from PIL import Image
from sklearn.datasets import load_wine

from services.generated.gateway.v1 import gateway_pb2
from training.corpora import LEE, load_corpus, normalize_word
from training.mnist import load_mnist_split
from training.series import load_airpassengers_split

DIGIT_SIZES = (28, 56, 112)  # pixels per side of the PNG files sent
MAX_SAMPLES = 4  # rows or images in one request
FREQUENT_WORDS = 200
RARE_WORDS = 200
ANALOGIES = 200

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
    """Candidate words and analogies; `Workload.keep_known` drops those a model lacks."""

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
        names = ("classifier", "cnn", "forecaster", "word2vec", "autoencoder")
        return gateway_pb2.GetModelRequest(name=self._random.choice(names))

    def _history_and_horizon(self) -> tuple[list[float], int]:
        series = _passengers()
        length = self._random.randint(24, len(series))
        start = self._random.randint(0, len(series) - length)
        return series[start : start + length], self._random.randint(1, 24)


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


def candidate_words() -> Words:
    """Frequent and rare words of the Lee corpus, and analogies among words it has."""
    counts = Counter(word for document in load_corpus(LEE).documents for word in document)
    ranked = [word for word, _ in counts.most_common() if word.isalpha()]
    rare = [word for word in ranked if 5 <= counts[word] <= 8]
    analogies = []
    for line in _questions_words().read_text().splitlines():
        parts = line.split()
        if line.startswith(":") or len(parts) != 4:
            continue
        a, b, c, _ = (normalize_word(word) for word in parts)
        if all(word in counts for word in (a, b, c)):
            analogies.append(((b, c), (a,)))  # b - a + c
    return Words(
        frequent=tuple(ranked[:FREQUENT_WORDS]),
        rare=tuple(random.Random(0).sample(rare, min(RARE_WORDS, len(rare)))),
        analogies=tuple(analogies[:ANALOGIES]),
    )


def _questions_words() -> Path:
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
