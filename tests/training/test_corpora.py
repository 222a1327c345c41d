"""The word2vec corpora load offline from shipped files, and words normalise one way."""

from __future__ import annotations

import socket

import pytest

from training.corpora import LEE, NEWS, load_corpus, news_articles_path, normalize_word, tokenize


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a corpus loader tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_lee_corpus(no_network: None) -> None:
    corpus = load_corpus(LEE)
    assert corpus.name == LEE
    assert len(corpus.documents) == 300
    assert 50_000 < corpus.tokens < 70_000
    assert corpus.documents[0][:4] == ["hundreds", "of", "people", "have"]


def test_news_corpus_is_read_as_data(no_network: None) -> None:
    assert news_articles_path().name == "NewsArticles.zip"
    corpus = load_corpus(NEWS)
    assert len(corpus.documents) == 3824
    assert 2_000_000 < corpus.tokens < 2_300_000
    assert corpus.documents[0][:4] == ["betsy", "devos", "confirmed", "as"]


def test_unknown_corpus() -> None:
    with pytest.raises(ValueError, match="unknown corpus 'wiki'"):
        load_corpus("wiki")


@pytest.mark.parametrize(
    ("raw", "word"),
    [
        ("King", "king"),
        ("«king,»", "king"),
        ("(Queen)!", "queen"),
        ("\uff2b\uff29\uff2e\uff27", "king"),  # full-width KING: NFKC
        ("\ufb01re", "fire"),  # the fi ligature: NFKC
        ("  paris\u00a0", "paris"),
        ("\tking\r\n", "king"),  # as the word2vec graph strips it
        ("don't", "don't"),
        ("...", ""),
    ],
)
def test_normalize_word(raw: str, word: str) -> None:
    assert normalize_word(raw) == word


def test_tokenize_keeps_words_and_drops_numbers_and_punctuation() -> None:
    assert tokenize("Don't stop—the U.S. café opened in 2017!") == [
        "don't",
        "stop",
        "the",
        "u",
        "s",
        "café",
        "opened",
        "in",
    ]
