"""The model contracts (training/contracts/): both sides import them, so they must load without
TensorFlow; and the word normalisation the word2vec contract splits between the gateway (unicode
NFKC, in Python) and the exported graph (lower case, surrounding punctuation stripped, in
TensorFlow) must give what training.corpora.normalize_word, which training used, gives."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from services.gateway.words import _as_sent
from training.contracts.common import FLOAT32_MAX, is_version_name
from training.corpora import normalize_word

CONTRACTS = ("common", "classifier", "cnn", "forecaster", "word2vec", "autoencoder")

# Words as clients may send them: case, compatibility forms NFKC folds, what surrounds a word,
# what may sit inside one, and nothing at all.
TRICKY_WORDS = [
    "King",
    "GOVERNMENT",
    "\uff2b\uff29\uff2e\uff27",  # full-width KING
    "\ufb01re",  # the fi ligature
    "\ufb03ce",  # the ffi ligature
    "\u2167",  # the Roman numeral VIII
    "x\u00b2",  # superscript two
    "\u338f",  # the kg square
    "caf\u00e9",
    "cafe\u0301",  # e + combining acute: NFKC composes it
    "\u01c4ungla",  # the DZ-caron digraph
    "STRASSE",
    "\u1e9e",  # capital sharp s
    "\u039f\u0394\u039f\u03a3",  # Greek, final sigma
    "\u0130stanbul",  # capital I with dot above
    "\u00abking,\u00bb",
    "(Queen)!",
    '"paris"',
    "$100",
    "\u20acuro",
    "\U0001f600king\U0001f600",
    "  paris\u00a0",
    "king\u3000",
    "\u2028king",
    "king\t",
    "\tking\n",
    "\rking\f",
    "king\v",  # a control character, no space to either side
    "\u200bking\u200b",  # zero-width space: a format character, kept by both
    "\u00adking",  # soft hyphen: a format character
    "don't",
    "don\u2019t",
    "\u2019tis",
    "rock\u2019n\u2019roll",
    "well-known",
    "e-mail.",
    "...",
    "--",
    "\u00bf?",
    "",
    "   ",
]


def test_the_contracts_import_without_tensorflow() -> None:
    modules = ", ".join(f"training.contracts.{name}" for name in CONTRACTS)
    check = f"import sys, {modules}; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", check], check=False).returncode == 0


def test_float32_max_is_numpys() -> None:
    assert float(np.finfo(np.float32).max) == FLOAT32_MAX


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("1", True),
        ("0000123", True),
        ("0", True),
        ("-1", False),
        ("1.5", False),
        ("", False),
        (".publishing-x", False),
        ("\u0661", False),
        ("latest", False),
    ],
)
def test_a_version_directory_is_named_by_ascii_digits(name: str, version: bool) -> None:
    assert is_version_name(name) is version


def test_the_gateway_and_the_graph_normalise_words_as_training_did() -> None:
    tf = pytest.importorskip("tensorflow")
    from training.word2vec.serving import normalize_words

    sent = _as_sent(TRICKY_WORDS)  # the gateway's half, exactly as it sends them
    served = [word.decode() for word in normalize_words(tf.constant(list(sent))).numpy()]
    trained = [normalize_word(word) for word in TRICKY_WORDS]
    disagree = [
        (word, want, got)
        for word, want, got in zip(TRICKY_WORDS, trained, served, strict=True)
        if want != got
    ]
    assert not disagree, "(input, training's word, the served word): " + repr(disagree)
