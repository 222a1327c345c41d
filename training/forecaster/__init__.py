"""Monthly series forecaster: a GRU on AirPassengers, exported for step-by-step generation.

The model reads a series one value at a time. Inside the graph each raw value is taken to log
space (multiplicative seasonality becomes additive) and the network sees the scaled month-on-month
change of the log value, which is stationary where the level is not; it predicts the next change,
which the graph turns back into a raw value. The scaling is fitted on the 132 training months
only and lives in the exported graph, so clients send and receive passengers (in thousands).

One ``GRUCell`` holds all the recurrent weights: the training model runs it over whole sequences
(a Keras ``RNN`` layer), and the exported ``step`` runs the very same cell once, so a forecast
generated step by step gives the trained model's numbers. The recurrent state a client carries is
the cell's hidden vector followed by the last log value and a flag saying a value has been seen
(16 + 2 = 18 values); all zeros is the state before any value.

Training sequences start at every month of the training part and run from the zero state to its
end, so the network learns to forecast after histories of any length, as ``prime`` and ``window``
use it. With 132 values a single network's forecast varies with the seed and the epoch count, so
training ends on an exponential moving average of the weights (Keras's optimizer EMA).

The export's signatures, ``window`` (also ``serving_default``), ``step``, ``prime`` and
``metadata``, are a contract the gateway's generator relies on: training/contracts/forecaster.py
describes them and names their tensors.

The run also fits two peers on the same 132 months and scores all on the held-out year: the
seasonal-naive forecast (last year again) and Holt-Winters exponential smoothing. As a sanity
check, a small model of the same kind learns the course's sine wave and must generate a sine.

The package is split by job: ``coding`` (the series' scaling), ``model`` (the Keras model),
``serving`` (the exported functions and their warm-up requests), ``generation`` (forecasts
through those functions, as a client makes them), ``data`` (training sequences), ``peers`` (the
forecasts it is compared with), ``config``, ``results``, ``plots``, and ``job`` (the run).
"""

from __future__ import annotations

from training.forecaster.coding import SeriesCoding
from training.forecaster.config import FULL, PROFILES, QUICK, ForecasterConfig, SineConfig
from training.forecaster.data import Sequences, holdout_sequence, training_sequences
from training.forecaster.generation import (
    generate,
    one_step_forecasts,
    prime_chunk,
    prime_in_chunks,
)
from training.forecaster.job import run, train, train_sine
from training.forecaster.model import RecurrentForecaster, build_model
from training.forecaster.peers import holt_winters_forecast, rmse, seasonal_naive_forecast
from training.forecaster.results import (
    ForecasterMetrics,
    ForecasterResult,
    Forecasts,
    PeerMetrics,
    SineCheck,
    SineMetrics,
)
from training.forecaster.serving import ServingFunctions, serving_functions, warmup_requests

__all__ = [
    "FULL",
    "PROFILES",
    "QUICK",
    "ForecasterConfig",
    "ForecasterMetrics",
    "ForecasterResult",
    "Forecasts",
    "PeerMetrics",
    "RecurrentForecaster",
    "Sequences",
    "SeriesCoding",
    "ServingFunctions",
    "SineCheck",
    "SineConfig",
    "SineMetrics",
    "build_model",
    "generate",
    "holdout_sequence",
    "holt_winters_forecast",
    "one_step_forecasts",
    "prime_chunk",
    "prime_in_chunks",
    "rmse",
    "run",
    "seasonal_naive_forecast",
    "serving_functions",
    "train",
    "train_sine",
    "training_sequences",
    "warmup_requests",
]
