"""What a run gives back: ``ForecasterMetrics`` (``metrics.json`` in the published version,
with the peers' and the sine check's scores), the held-out year as each forecaster saw it
(``Forecasts``), the sine check, and ``ForecasterResult``, the whole finished run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.forecaster.config import ForecasterConfig
from training.forecaster.model import RecurrentForecaster
from training.forecaster.serving import ServingFunctions
from training.job import RunMetrics, RunResult
from training.series import SeriesSplit


@dataclass(frozen=True)
class PeerMetrics:
    seasonal_naive: float
    holt_winters: float


@dataclass(frozen=True)
class SineMetrics:
    rmse: float
    steps: int


@dataclass(frozen=True, kw_only=True)
class ForecasterMetrics(RunMetrics):
    """What goes into ``metrics.json`` inside the published version, beside the run's fields."""

    rmse: float  # the 12-month forecast generated with `prime` + `step`
    window_rmse: float  # one month ahead with `window`, over the same 12 months
    peers: PeerMetrics
    ratio_to_seasonal_naive: float
    sine: SineMetrics
    n_train: int
    n_test: int
    window_size: int
    state_size: int


@dataclass(frozen=True)
class Forecasts:
    """The held-out year as each forecaster saw it."""

    model: np.ndarray
    one_step: np.ndarray
    seasonal_naive: np.ndarray
    holt_winters: np.ndarray


@dataclass(frozen=True)
class SineCheck:
    model: RecurrentForecaster
    split: SeriesSplit
    generated: np.ndarray
    rmse: float


@dataclass(frozen=True, kw_only=True)
class ForecasterResult(RunResult[ForecasterMetrics]):
    """A finished run: the in-memory model, its data, forecasts, metrics and where it went."""

    model: RecurrentForecaster
    config: ForecasterConfig
    split: SeriesSplit
    functions: ServingFunctions
    forecasts: Forecasts
    sine: SineCheck
