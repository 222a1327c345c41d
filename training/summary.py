"""One line per finished training run, for people: how long it took, how good the model is
against its peer, and where its version and reports went. metrics.json holds the rest."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Metrics = Mapping[str, Any]

# By model: its headline score beside its peer's, from its metrics.json.
_HEADLINES: dict[str, Callable[[Metrics], str]] = {
    "classifier": lambda m: (
        f"accuracy {m['test_accuracy']:.3f} (peer {m['peer']['test_accuracy']:.3f})"
    ),
    "cnn": lambda m: f"accuracy {m['test_accuracy']:.3f} (peer {m['peer']['test_accuracy']:.3f})",
    "forecaster": lambda m: (
        f"RMSE {m['rmse']:.1f} (seasonal naive {m['peers']['seasonal_naive']:.1f})"
    ),
    "word2vec": lambda m: f"Spearman {m['spearman']:.3f} (gensim {m['peer']['spearman']:.3f})",
    "autoencoder": lambda m: f"MSE {m['test_mse']:.4f} (PCA {m['peer']['test_mse']:.4f})",
}


def progress(position: int, total: int, name: str) -> str:
    """``[2/5] cnn``: which run of how many."""
    return f"[{position}/{total}] {name}"


def summary_line(
    position: int, total: int, name: str, metrics: Metrics, version: int, reports: str
) -> str:
    """``[2/5] cnn  24 s  accuracy 0.983 (peer 0.921)  version 3  reports/cnn/...``"""
    headline = _HEADLINES.get(name)
    score = headline(metrics) if headline else ""
    parts = [
        progress(position, total, name),
        f"{metrics['train_seconds']:.0f} s",
        score,
        f"version {version}",
        reports,
    ]
    return "  ".join(part for part in parts if part)
