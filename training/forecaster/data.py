"""The training data: crops of the training months, each run from the zero state
(``training_sequences``), and the whole series scored on the held-out year only
(``holdout_sequence``), as raw inputs with coded targets and per-position weights."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.forecaster.coding import SeriesCoding
from training.series import SeriesSplit


@dataclass(frozen=True)
class Sequences:
    """Training sequences of raw values [N, T] (padded at the end), coded targets [N, T, 1] and
    their weights [N, T]."""

    inputs: np.ndarray
    targets: np.ndarray
    weights: np.ndarray


def training_sequences(
    values: np.ndarray,
    coding: SeriesCoding,
    *,
    stride: int,
    min_length: int,
    max_length: int,
    burn_in: int = 0,
) -> Sequences:
    """Crops starting every ``stride`` steps, each run from the zero state for up to
    ``max_length`` values; each position's target is the coded value after it, scored from
    position ``burn_in`` on (the first few values leave the model little to go by)."""
    values = np.asarray(values, np.float32)
    length = min(max_length, len(values) - 1)
    inputs, targets, weights = [], [], []
    for start in range(0, len(values) - min_length, stride):
        crop = values[start : start + length + 1]
        valid = len(crop) - 1
        padded = np.concatenate([crop, np.full(length + 1 - len(crop), crop[-1], np.float32)])
        inputs.append(padded[:-1])
        targets.append(coding.targets(padded)[:, None])
        positions = np.arange(length)
        weights.append(((positions >= burn_in) & (positions < valid)).astype(np.float32))
    return Sequences(np.stack(inputs), np.stack(targets), np.stack(weights))


def holdout_sequence(split: SeriesSplit, coding: SeriesCoding) -> Sequences:
    """The whole series from the zero state, scored only where the target is a held-out value."""
    values = split.values
    weights = np.zeros(len(values) - 1, np.float32)
    weights[len(split.train) - 1 :] = 1.0
    return Sequences(values[None, :-1], coding.targets(values)[None, :, None], weights[None])
