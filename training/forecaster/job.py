"""The training job: ``train`` fits the GRU on AirPassengers, scores its generated year against
the peers, runs the sine sanity check (``train_sine``), saves the reports and publishes a new
version; ``run`` is the CLI's entry (``training.jobs``), a named profile with an optional seed."""

from __future__ import annotations

from functools import partial

import keras

from training.contracts.forecaster import MODEL_NAME
from training.export import export_endpoints
from training.forecaster.coding import SeriesCoding
from training.forecaster.config import PROFILES, ForecasterConfig, SineConfig
from training.forecaster.data import holdout_sequence, training_sequences
from training.forecaster.generation import generate, one_step_forecasts
from training.forecaster.model import build_model
from training.forecaster.peers import holt_winters_forecast, rmse, seasonal_naive_forecast
from training.forecaster.plots import (
    FORECAST_PICTURE,
    SINE_CURVES,
    SINE_PICTURE,
    plot_forecast,
    plot_sine,
)
from training.forecaster.results import (
    ForecasterMetrics,
    ForecasterResult,
    Forecasts,
    PeerMetrics,
    SineCheck,
    SineMetrics,
)
from training.forecaster.serving import serving_functions, warmup_requests
from training.job import JobRun
from training.jobs import RunOptions, profile_config
from training.reporting import plot_history
from training.runtime import select_strategy
from training.series import load_airpassengers_split, load_sine_split


def train_sine(config: SineConfig, verbose: int) -> tuple[SineCheck, keras.callbacks.History]:
    """Learn the sine wave, then generate ``config.steps`` values from a seed window."""
    split = load_sine_split(holdout=config.steps)
    # Level coding: coded as changes, a small error in the slope makes the phase drift.
    coding = SeriesCoding.fit(split.train, log=False, change=False, min_value=0.0)
    with select_strategy().scope():
        model = build_model(
            coding, config.units, config.learning_rate, config.ema_momentum, name="sine_forecaster"
        )
    sequences = training_sequences(
        split.train,
        coding,
        stride=config.crop_stride,
        min_length=config.crop_length,
        max_length=config.crop_length,
        burn_in=config.burn_in,
    )
    history = model.fit(
        sequences.inputs,
        sequences.targets,
        sample_weight=sequences.weights,
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        verbose=verbose,
    )
    functions = serving_functions(model, config.crop_length).concrete()
    seed_window = split.train[None, -config.crop_length :]
    generated = generate(functions, seed_window, config.steps, model.state_size)[0]
    check = SineCheck(
        model=model, split=split, generated=generated, rmse=rmse(generated, split.test)
    )
    return check, history


def train(config: ForecasterConfig, options: RunOptions) -> ForecasterResult:
    """Train, compare with the peers, check the sine, and publish a new version."""
    job = JobRun(MODEL_NAME, config, options)
    split = load_airpassengers_split()
    coding = SeriesCoding.fit(split.train, log=True, change=True, min_value=config.min_value)
    with select_strategy().scope():
        model = build_model(
            coding, config.units, config.learning_rate, config.ema_momentum, name="gru_forecaster"
        )
    sequences = training_sequences(
        split.train,
        coding,
        stride=config.crop_stride,
        min_length=config.min_crop_length,
        max_length=len(split.train) - 1,
    )
    # One-step errors on the held-out year, for the curves only: nothing is chosen by them.
    holdout = holdout_sequence(split, coding)
    job.fit(
        model,
        "forecaster: GRU on AirPassengers",
        sequences.inputs,
        sequences.targets,
        sample_weight=sequences.weights,
        epochs=config.epochs,
        batch_size=config.batch_size,
        validation_data=(holdout.inputs, holdout.targets, holdout.weights),
        shuffle=True,
    )
    functions = serving_functions(model, config.window_size)
    concrete = functions.concrete()
    horizon = len(split.test)
    forecasts = Forecasts(
        model=generate(concrete, split.train[None, :], horizon, model.state_size)[0],
        one_step=one_step_forecasts(concrete, split, config.window_size),
        seasonal_naive=seasonal_naive_forecast(split.train, horizon, split.period),
        holt_winters=holt_winters_forecast(split.train, horizon, split.period),
    )
    peers = PeerMetrics(
        seasonal_naive=rmse(forecasts.seasonal_naive, split.test),
        holt_winters=rmse(forecasts.holt_winters, split.test),
    )
    model_rmse = rmse(forecasts.model, split.test)
    job.reports.save(
        plot_forecast(
            split,
            forecasts,
            {
                "GRU (prime + step)": model_rmse,
                "Holt-Winters": peers.holt_winters,
                "seasonal naive": peers.seasonal_naive,
            },
        ),
        FORECAST_PICTURE,
    )

    sine, sine_history = train_sine(config.sine, options.verbose)
    job.reports.save(plot_history(sine_history, "sanity check: GRU on a sine wave"), SINE_CURVES)
    job.reports.save(plot_sine(sine), SINE_PICTURE)
    metrics, published = job.publish(
        partial(
            ForecasterMetrics,
            rmse=model_rmse,
            window_rmse=rmse(forecasts.one_step, split.test),
            peers=peers,
            ratio_to_seasonal_naive=model_rmse / peers.seasonal_naive,
            sine=SineMetrics(rmse=sine.rmse, steps=len(sine.generated)),
            n_train=len(split.train),
            n_test=len(split.test),
            window_size=config.window_size,
            state_size=model.state_size,
        ),
        lambda directory: export_endpoints(directory, [model], functions.endpoints()),
        warmup_requests(split, config.window_size, model.state_size),
    )
    return ForecasterResult(
        model=model,
        config=config,
        split=split,
        functions=functions,
        forecasts=forecasts,
        sine=sine,
        metrics=metrics,
        published=published,
        reports=job.reports,
    )


def run(options: RunOptions) -> ForecasterResult:
    """The CLI's entry: a named profile, optionally with another seed."""
    return train(profile_config(PROFILES, options), options)
