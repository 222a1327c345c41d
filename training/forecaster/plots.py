"""The run's pictures beside its training curves: the held-out year as the GRU, Holt-Winters
and the seasonal-naive forecast saw it (``plot_forecast``), and the sine wave the sanity check
generated (``plot_sine``), with the file names they are saved under."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from training.forecaster.results import Forecasts, SineCheck
from training.series import SeriesSplit

FORECAST_PICTURE = "forecast.png"
SINE_PICTURE = "sine_generation.png"
SINE_CURVES = "sine_training_curves.png"


def plot_forecast(split: SeriesSplit, forecasts: Forecasts, scores: dict[str, float]) -> Figure:
    months = np.arange("1949-01", "1961-01", dtype="datetime64[M]").astype("datetime64[D]")
    n_train = len(split.train)
    test_months = months[n_train:]
    figure = Figure(figsize=(10, 4.5))
    axes = figure.subplots()
    axes.plot(months[:n_train], split.train, color="black", linewidth=1, label="training months")
    axes.plot(test_months, split.test, color="black", linewidth=2, marker="o", label="actual 1960")
    for label, values, style in (
        ("GRU (prime + step)", forecasts.model, "-"),
        ("Holt-Winters", forecasts.holt_winters, "--"),
        ("seasonal naive", forecasts.seasonal_naive, ":"),
    ):
        axes.plot(
            test_months, values, style, linewidth=2, label=f"{label}: RMSE {scores[label]:.1f}"
        )
    axes.set_ylabel("passengers (thousands)")
    axes.set_title("AirPassengers: 12 months generated from the 132 before them")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left")
    return figure


def plot_sine(check: SineCheck) -> Figure:
    train, test = check.split.train, check.split.test
    n_seed = 100
    x = np.arange(len(train) + len(test))
    figure = Figure(figsize=(8, 3.6))
    axes = figure.subplots()
    axes.plot(x[len(train) - n_seed : len(train)], train[-n_seed:], color="black", label="training")
    axes.plot(x[len(train) :], test, color="black", linewidth=3, alpha=0.3, label="true sine")
    axes.plot(x[len(train) :], check.generated, "--", label=f"generated: RMSE {check.rmse:.3f}")
    axes.set_title(f"sine wave: {len(test)} values generated step by step from a seed window")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left")
    return figure
