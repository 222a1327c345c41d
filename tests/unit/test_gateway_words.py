"""Analogy queries whose words cancel out are refused: the model would answer them with the
first words of its vocabulary at score 0, or with the neighbours of rounding noise."""

from __future__ import annotations

import numpy as np
import pytest

from services.gateway import errors
from services.gateway.words import Analogy, check_query

# Embeddings as the model holds them (not unit length); "Government" is the graph's
# normalisation of "government", so the model gives both the same vector.
RNG = np.random.default_rng(0)
VECTORS = {word: RNG.normal(size=50).astype(np.float32) * 3 for word in ("king", "man", "woman")}
VECTORS["government"] = VECTORS["Government"] = RNG.normal(size=50).astype(np.float32)
VECTORS["up"] = RNG.normal(size=50).astype(np.float32)
VECTORS["down"] = -2 * VECTORS["up"]  # the opposite direction: up + down is nothing


def check(positive: list[str], negative: list[str]) -> None:
    check_query(Analogy(positive, negative), np.stack([VECTORS[w] for w in positive + negative]))


@pytest.mark.parametrize(
    ("positive", "negative", "reason"),
    [
        (
            ["government"],
            ["government"],
            "'government' (positive[0]) and 'government' (negative[0]) are one word to the "
            "model, which cancels itself out; leave it out of both",
        ),
        (
            ["Government"],
            ["government"],
            "'Government' (positive[0]) and 'government' (negative[0]) are one word",
        ),
        (
            ["king", "woman", "government"],
            ["man", "government"],
            "'government' (positive[2]) and 'government' (negative[1]) are one word",
        ),
        (
            ["government", "government"],
            ["government", "government"],
            "'government' (positive[0]) and 'government' (negative[0]) are one word",
        ),
        (["up", "down"], [], "its words cancel each other out: there is no direction to search"),
    ],
    ids=["itself", "normalised-alike", "among-others", "duplicated", "opposites"],
)
def test_words_that_cancel_out_are_invalid_input(
    positive: list[str], negative: list[str], reason: str
) -> None:
    with pytest.raises(errors.InvalidInput) as raised:
        check(positive, negative)
    assert raised.value.field == "analogy"
    assert raised.value.reason.startswith(reason)


@pytest.mark.parametrize(
    ("positive", "negative"),
    [
        (["king", "woman"], ["man"]),
        (["king"], []),
        (["king", "king"], ["man"]),  # repeated on one side: it weighs twice, as in gensim
    ],
)
def test_analogies_with_a_direction_pass(positive: list[str], negative: list[str]) -> None:
    check(positive, negative)
