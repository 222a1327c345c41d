"""The forecasts the GRU is compared with, fitted on the same training months: the
seasonal-naive forecast (last season again) and Holt-Winters exponential smoothing (statsmodels),
and ``rmse``, the error all of them are scored by on the held-out year."""

from __future__ import annotations

import warnings

import numpy as np
from statsmodels.tsa.holtwinters import ExponentialSmoothing


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    difference = np.asarray(predicted, np.float64) - np.asarray(actual, np.float64)
    return float(np.sqrt(np.mean(difference**2)))


def seasonal_naive_forecast(train: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """Each month as it was one season earlier (the last season repeated)."""
    last_season = np.asarray(train[-period:], np.float32)
    return np.resize(last_season, horizon)


def holt_winters_forecast(train: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """Holt-Winters exponential smoothing: additive trend and additive seasonality."""
    model = ExponentialSmoothing(
        np.asarray(train, np.float64), trend="add", seasonal="add", seasonal_periods=period
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter from the optimizer
        fitted = model.fit()
    return np.asarray(fitted.forecast(horizon), np.float32)
