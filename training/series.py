"""The series the ``forecaster`` job learns from: monthly AirPassengers, and the course's sine wave.

AirPassengers (Box & Jenkins series G: monthly international airline passengers in thousands,
January 1949 to December 1960, 144 values) ships inside pmdarima as a literal array: no download.
The last 12 months (1960) are held out, so a forecast from the first 132 months is scored on a
whole year of trend and seasonality.

The sine wave is the course's sanity series: ``sin(x)`` on 501 points from 0 to 50 (0.1 apart), the
last 50 held out; a recurrent model that has learned it generates a sine from a seed window.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from pmdarima.datasets import load_airpassengers

AIRPASSENGERS = "airpassengers"
SINE = "sine"
MONTHS_PER_YEAR = 12
HOLDOUT_MONTHS = 12
SINE_POINTS = 501
SINE_STOP = 50.0
SINE_HOLDOUT = 50


@dataclass(frozen=True)
class SeriesSplit:
    """A univariate series cut in two: ``train`` (oldest first) and the ``test`` values right after
    it, float32, read-only."""

    name: str
    train: np.ndarray
    test: np.ndarray
    # Steps per season (12 for monthly data), or 0 when the series has no seasonal period.
    period: int = 0

    @property
    def values(self) -> np.ndarray:
        """The whole series, train then test."""
        return np.concatenate([self.train, self.test])


def load_airpassengers_split(holdout: int = HOLDOUT_MONTHS) -> SeriesSplit:
    """AirPassengers, its last ``holdout`` months held out (132/12 by default)."""
    values = _airpassengers()
    if not 0 < holdout < len(values):
        raise ValueError(f"holdout must be in 1..{len(values) - 1}, got {holdout}")
    return _split(AIRPASSENGERS, values, holdout, period=MONTHS_PER_YEAR)


def sine_wave(
    n_points: int = SINE_POINTS, stop: float = SINE_STOP
) -> tuple[np.ndarray, np.ndarray]:
    """The course's series: ``x = linspace(0, stop, n_points)`` and ``y = sin(x)``, float32."""
    x = np.linspace(0.0, stop, n_points)
    return x.astype(np.float32), np.sin(x).astype(np.float32)


def load_sine_split(
    n_points: int = SINE_POINTS, stop: float = SINE_STOP, holdout: int = SINE_HOLDOUT
) -> SeriesSplit:
    """The sine wave with its last ``holdout`` points held out (451/50 by default)."""
    _, values = sine_wave(n_points, stop)
    if not 0 < holdout < len(values):
        raise ValueError(f"holdout must be in 1..{len(values) - 1}, got {holdout}")
    return _split(SINE, values, holdout, period=0)


@functools.cache
def _airpassengers() -> np.ndarray:
    values = np.asarray(load_airpassengers(), dtype=np.float32)
    values.flags.writeable = False  # shared by every caller of the cache
    return values


def _split(name: str, values: np.ndarray, holdout: int, period: int) -> SeriesSplit:
    train = np.array(values[:-holdout], dtype=np.float32)
    test = np.array(values[-holdout:], dtype=np.float32)
    for part in (train, test):
        part.flags.writeable = False
    return SeriesSplit(name=name, train=train, test=test, period=period)


def clear_cache() -> None:
    """Forget the cached series, so the next call reads pmdarima's copy again."""
    _airpassengers.cache_clear()
