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

The export's signatures are a contract the gateway's generator relies on (S = ``state_size``,
W = ``window_size``, both also in ``metadata``):

- ``window`` (also ``serving_default``): ``window`` float32 [-1, W] raw past values, oldest first
  -> ``next_value`` float32 [-1]; the same as ``prime`` on that window
- ``step``: ``value`` float32 [-1] (the newest raw value), ``state`` float32 [-1, S]
  -> ``prediction`` float32 [-1] (the raw value after it), ``state`` float32 [-1, S]
- ``prime``: ``history`` float32 [-1, C] (C = 240 raw values, oldest first, the first ``count``
  of them real and the rest padding), ``count`` int32 [-1], ``state`` float32 [-1, S]
  -> ``prediction`` float32 [-1], ``state`` float32 [-1, S]: ``step`` over the real values,
  from ``state``, in one call. A longer history is primed chunk by chunk (``prime_in_chunks``),
  starting from the zero state. The fixed width keeps every prime request the same shape, so
  TensorFlow Serving's batching can merge any of them.
- ``metadata``: ``rows`` int32 [-1] -> ``window_size`` int64 [-1], ``state_size`` int64 [-1],
  ``min_history`` int64 [-1] (1), ``min_value`` float32 [-1] (values are raised to it before the
  log: the series is positive, so clients should send positive values), the same in every row

The run also fits two peers on the same 132 months and scores all on the held-out year: the
seasonal-naive forecast (last year again) and Holt-Winters exponential smoothing. As a sanity
check, a small model of the same kind learns the course's sine wave and must generate a sine.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure
from statsmodels.tsa.holtwinters import ExponentialSmoothing

from training.export import (
    Endpoint,
    export_endpoints,
    metadata_endpoint,
    metadata_warmup,
    publish_model,
)
from training.jobs import RunOptions, profile_config
from training.publish import PublishedVersion
from training.reporting import TRAINING_CURVES, RunReports, plot_history
from training.runtime import seed_everything, select_strategy
from training.series import SeriesSplit, load_airpassengers_split, load_sine_split
from training.warmup import WarmupRequest

MODEL_NAME = "forecaster"
WINDOW_SIGNATURE = "window"
STEP_SIGNATURE = "step"
PRIME_SIGNATURE = "prime"
WINDOW_INPUT = "window"
NEXT_VALUE_OUTPUT = "next_value"
VALUE_INPUT = "value"
STATE = "state"
HISTORY_INPUT = "history"
COUNT_INPUT = "count"
PRIME_CHUNK = 240
PREDICTION_OUTPUT = "prediction"

FORECAST_PICTURE = "forecast.png"
SINE_PICTURE = "sine_generation.png"
SINE_CURVES = "sine_training_curves.png"

# The state after the hidden vector: the last value (transformed) and a "seen a value" flag.
_EXTRA_STATE = 2


@dataclass(frozen=True)
class SineConfig:
    """The sanity check: a small model of the same kind on the course's sine wave."""

    units: int = 16
    epochs: int = 40
    learning_rate: float = 0.01
    ema_momentum: float = 0.0
    # Crops of `crop_length` points every `crop_stride` points, from the zero state; the first
    # `burn_in` predictions of each (the direction of the wave is not known yet) are not scored.
    crop_length: int = 60
    crop_stride: int = 2
    burn_in: int = 10
    batch_size: int = 32
    steps: int = 50  # generated from a seed window of the last `crop_length` training points


@dataclass(frozen=True)
class ForecasterConfig:
    """Everything that decides what a training run learns."""

    profile: str
    epochs: int
    learning_rate: float
    units: int = 16
    # Training ends on the moving average of the weights (0: on the last weights).
    ema_momentum: float = 0.99
    window_size: int = 24
    batch_size: int = 16
    # Training sequences start every `crop_stride` months and run to the end of the training
    # part, so the model learns from the zero state and from histories of every length.
    crop_stride: int = 1
    min_crop_length: int = 24
    # Values are clamped at this before the log (the series is positive).
    min_value: float = 1e-3
    seed: int = 7
    sine: SineConfig = SineConfig()


QUICK = ForecasterConfig(
    profile="quick", epochs=60, learning_rate=0.005, ema_momentum=0.99, sine=SineConfig(epochs=40)
)
# Longer, with a slower weight average: more epochs at the same rate alone start to overfit.
FULL = ForecasterConfig(
    profile="full", epochs=80, learning_rate=0.005, ema_momentum=0.995, sine=SineConfig(epochs=80)
)
PROFILES: dict[str, ForecasterConfig] = {config.profile: config for config in (QUICK, FULL)}


@dataclass(frozen=True)
class SeriesCoding:
    """How raw values become the network's inputs and its outputs become raw values again.

    Values are first transformed (``log``, or kept as they are). With ``change`` the input at each
    value is the scaled change from the value before (0 for the first value of a series) and the
    output the scaled change to the next value; without it, the input is the scaled value and the
    output the scaled next value. Center and scale are fitted on training values only.
    """

    log: bool
    change: bool
    center: float
    scale: float
    min_value: float

    @classmethod
    def fit(cls, train: np.ndarray, *, log: bool, change: bool, min_value: float) -> SeriesCoding:
        values = _transform_np(np.asarray(train, np.float64), log, min_value)
        fitted = np.diff(values) if change else values
        return cls(
            log=log,
            change=change,
            center=float(np.mean(fitted)),
            scale=float(np.std(fitted)),
            min_value=min_value,
        )

    # In the graph.

    def transform(self, values: tf.Tensor) -> tf.Tensor:
        if not self.log:
            return values
        return tf.math.log(tf.maximum(values, self.min_value))

    def sequence_inputs(self, current: tf.Tensor) -> tf.Tensor:
        """[B, T] transformed values -> network inputs [B, T, 1], as ``step_inputs`` gives them
        value after value from the zero state."""
        if self.change:
            changes = (current[:, 1:] - current[:, :-1] - self.center) / self.scale
            scaled = tf.concat([tf.zeros_like(current[:, :1]), changes], axis=1)
        else:
            scaled = (current - self.center) / self.scale
        return scaled[:, :, tf.newaxis]

    def step_inputs(self, current: tf.Tensor, previous: tf.Tensor, seen: tf.Tensor) -> tf.Tensor:
        """The network input [B, 1] for one transformed value [B], given the one before it
        (``seen`` 0: there was none)."""
        if self.change:
            scaled = tf.where(seen > 0.0, (current - previous - self.center) / self.scale, 0.0)
        else:
            scaled = (current - self.center) / self.scale
        return scaled[:, tf.newaxis]

    def decode(self, current: tf.Tensor, output: tf.Tensor) -> tf.Tensor:
        """The raw next value from the network's output and the (transformed) current value."""
        unscaled = output * self.scale + self.center
        following = current + unscaled if self.change else unscaled
        return tf.exp(following) if self.log else following

    # In NumPy, for the training targets.

    def targets(self, values: np.ndarray) -> np.ndarray:
        """What the network should output after each value but the last: [..., T] -> [..., T-1]."""
        transformed = _transform_np(np.asarray(values, np.float64), self.log, self.min_value)
        following = transformed[..., 1:]
        if self.change:
            following = following - transformed[..., :-1]
        return ((following - self.center) / self.scale).astype(np.float32)


def _transform_np(values: np.ndarray, log: bool, min_value: float) -> np.ndarray:
    return np.log(np.maximum(values, min_value)) if log else values


class RecurrentForecaster(keras.Model):  # type: ignore[misc]
    """A GRU over a series; ``call`` is the training view, ``prime``/``step`` the serving one.

    The state a client carries is ``[hidden (units), previous transformed value, seen flag]``;
    all zeros is the state before any value.
    """

    def __init__(self, coding: SeriesCoding, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.coding = coding
        self.units = units
        self.rnn = keras.layers.RNN(
            keras.layers.GRUCell(units, name="gru_cell"),
            return_sequences=True,
            return_state=True,
            name="gru",
        )
        self.head = keras.layers.Dense(1, name="next")

    @property
    def state_size(self) -> int:
        return self.units + _EXTRA_STATE

    def call(self, values: tf.Tensor, training: bool = False) -> tf.Tensor:
        """[B, T] raw values -> [B, T, 1] coded predictions of the value after each one."""
        inputs = self.coding.sequence_inputs(self.coding.transform(values))
        outputs, _ = self.rnn(inputs, training=training)
        return self.head(outputs)

    def prime(self, history: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """[B, T] raw values -> the raw next value [B] and the state after the last value."""
        transformed = self.coding.transform(history)
        outputs, hidden = self.rnn(self.coding.sequence_inputs(transformed))
        current = transformed[:, -1]
        prediction = self.coding.decode(current, self.head(outputs[:, -1])[:, 0])
        return prediction, self._state(hidden, current)

    def step(self, value: tf.Tensor, state: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """One raw value [B] and the state before it -> the raw next value and the new state."""
        new_state = self.advance(value, state)
        return self.predict_next(new_state), new_state

    def advance(self, value: tf.Tensor, state: tf.Tensor) -> tf.Tensor:
        """The state after one more raw value [B], without the prediction."""
        hidden, previous, seen = (
            state[:, : self.units],
            state[:, self.units],
            state[:, self.units + 1],
        )
        current = self.coding.transform(value)
        # The very cell the RNN layer runs in `call` and `prime`: the same weights and numbers.
        output, _ = self.rnn.cell(self.coding.step_inputs(current, previous, seen), [hidden])
        return self._state(output, current)

    def predict_next(self, state: tf.Tensor) -> tf.Tensor:
        """The raw value after the one a state has last seen."""
        hidden, current = state[:, : self.units], state[:, self.units]
        return self.coding.decode(current, self.head(hidden)[:, 0])

    def _state(self, hidden: tf.Tensor, current: tf.Tensor) -> tf.Tensor:
        seen = tf.ones_like(current)
        return tf.concat([hidden, current[:, tf.newaxis], seen[:, tf.newaxis]], axis=1)


@dataclass(frozen=True)
class ServingFunctions:
    """The exported signatures as functions of one model (traced with their input signatures)."""

    window: Callable[..., dict[str, tf.Tensor]]
    step: Callable[..., dict[str, tf.Tensor]]
    prime: Callable[..., dict[str, tf.Tensor]]
    metadata: Mapping[str, tf.Tensor]
    window_size: int
    state_size: int

    def endpoints(self) -> list[Endpoint]:
        state = tf.TensorSpec([None, self.state_size], tf.float32, name=STATE)
        return [
            Endpoint(
                WINDOW_SIGNATURE,
                self.window,
                [tf.TensorSpec([None, self.window_size], tf.float32, name=WINDOW_INPUT)],
            ),
            Endpoint(
                STEP_SIGNATURE,
                self.step,
                [tf.TensorSpec([None], tf.float32, name=VALUE_INPUT), state],
            ),
            Endpoint(
                PRIME_SIGNATURE,
                self.prime,
                [
                    tf.TensorSpec([None, PRIME_CHUNK], tf.float32, name=HISTORY_INPUT),
                    tf.TensorSpec([None], tf.int32, name=COUNT_INPUT),
                    state,
                ],
            ),
            metadata_endpoint(self.metadata),
        ]

    def concrete(self) -> dict[str, Any]:
        """Concrete functions traced exactly as the export traces them, by signature name."""
        return {
            endpoint.name: tf.function(
                endpoint.function, input_signature=list(endpoint.input_signature)
            ).get_concrete_function()
            for endpoint in self.endpoints()
        }


def serving_functions(model: RecurrentForecaster, window_size: int) -> ServingFunctions:
    constants = {
        "window_size": tf.constant(window_size, tf.int64),
        "state_size": tf.constant(model.state_size, tf.int64),
        "min_history": tf.constant(1, tf.int64),
        "min_value": tf.constant(model.coding.min_value, tf.float32),
    }

    def window(window: tf.Tensor) -> dict[str, tf.Tensor]:
        prediction, _ = model.prime(window)
        return {NEXT_VALUE_OUTPUT: prediction}

    def step(value: tf.Tensor, state: tf.Tensor) -> dict[str, tf.Tensor]:
        prediction, new_state = model.step(value, state)
        return {PREDICTION_OUTPUT: prediction, STATE: new_state}

    def prime(history: tf.Tensor, count: tf.Tensor, state: tf.Tensor) -> dict[str, tf.Tensor]:
        def advance(position: tf.Tensor, current: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            next_state = model.advance(history[:, position], current)
            real = position < count  # padding leaves a row as it was
            return position + 1, tf.where(real[:, tf.newaxis], next_state, current)

        # Only as many steps as the longest row has values: a short history in the fixed-width
        # chunk does not pay for the padding after it. The loop carries the state alone; the
        # prediction comes from the final state, once.
        steps = tf.reduce_max(count)
        _, final = tf.while_loop(
            lambda position, _: position < steps,
            advance,
            (tf.constant(0), state),
            parallel_iterations=1,
        )
        prediction = tf.where(count > 0, model.predict_next(final), 0.0)
        return {PREDICTION_OUTPUT: prediction, STATE: final}

    return ServingFunctions(
        window=window,
        step=step,
        prime=prime,
        metadata=constants,
        window_size=window_size,
        state_size=model.state_size,
    )


# Training data.


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


def build_model(
    coding: SeriesCoding,
    units: int,
    learning_rate: float,
    ema_momentum: float,
    name: str,
) -> RecurrentForecaster:
    """The model, compiled; with an ``ema_momentum`` training ends on the moving average of the
    weights, which steadies the forecast from one run or epoch count to the next."""
    model = RecurrentForecaster(coding, units, name=name)
    model(np.ones((1, 2), np.float32))  # create the weights inside the strategy's scope
    optimizer = keras.optimizers.Adam(
        learning_rate=learning_rate, use_ema=ema_momentum > 0, ema_momentum=ema_momentum or 0.99
    )
    model.compile(optimizer=optimizer, loss="mse")
    return model


# Forecasts and peers.


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


def prime_in_chunks(
    prime: Callable[..., Mapping[str, Any]], history: np.ndarray, state_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``prime`` signature over a history [B, T] of any length: PRIME_CHUNK values per call,
    carrying the state from one call to the next. Returns the prediction [B] and state [B, S]."""
    history = np.asarray(history, np.float32)
    state = np.zeros((history.shape[0], state_size), np.float32)
    prediction = np.zeros(history.shape[0], np.float32)
    for start in range(0, history.shape[1], PRIME_CHUNK):
        inputs = prime_chunk(history[:, start : start + PRIME_CHUNK], state)
        outputs = prime(**{name: tf.constant(value) for name, value in inputs.items()})
        prediction = np.asarray(outputs[PREDICTION_OUTPUT])
        state = np.asarray(outputs[STATE])
    return prediction, state


def generate(
    functions: dict[str, Any], history: np.ndarray, horizon: int, state_size: int
) -> np.ndarray:
    """``horizon`` values after ``history`` [B, T]: ``prime`` on the history, then ``step`` fed
    with each prediction in turn. Returns [B, horizon]."""
    first, primed = prime_in_chunks(functions[PRIME_SIGNATURE], history, state_size)
    predictions = [tf.constant(first)]
    state = tf.constant(primed)
    for _ in range(horizon - 1):
        outputs = functions[STEP_SIGNATURE](value=predictions[-1], state=state)
        predictions.append(outputs[PREDICTION_OUTPUT])
        state = outputs[STATE]
    return np.stack([prediction.numpy() for prediction in predictions], axis=1)


def one_step_forecasts(
    functions: dict[str, Any], split: SeriesSplit, window_size: int
) -> np.ndarray:
    """Each held-out value predicted by ``window`` from the ``window_size`` actual values
    before it."""
    values = split.values
    start = len(split.train)
    windows = np.stack([values[index - window_size : index] for index in range(start, len(values))])
    outputs = functions[WINDOW_SIGNATURE](window=tf.constant(windows, tf.float32))
    return np.asarray(outputs[NEXT_VALUE_OUTPUT].numpy())


# Results.


@dataclass(frozen=True)
class PeerMetrics:
    seasonal_naive: float
    holt_winters: float


@dataclass(frozen=True)
class SineMetrics:
    rmse: float
    steps: int


@dataclass(frozen=True)
class ForecasterMetrics:
    """What goes into ``metrics.json`` inside the published version."""

    model: str
    version: int
    profile: str
    rmse: float  # the 12-month forecast generated with `prime` + `step`
    window_rmse: float  # one month ahead with `window`, over the same 12 months
    peers: PeerMetrics
    ratio_to_seasonal_naive: float
    sine: SineMetrics
    n_train: int
    n_test: int
    window_size: int
    state_size: int
    epochs: int
    train_seconds: float
    created: str
    seed: int

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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


@dataclass(frozen=True)
class ForecasterResult:
    """A finished run: the in-memory model, its data, forecasts, metrics and where it went."""

    model: RecurrentForecaster
    config: ForecasterConfig
    split: SeriesSplit
    functions: ServingFunctions
    forecasts: Forecasts
    sine: SineCheck
    metrics: ForecasterMetrics
    published: PublishedVersion
    reports: RunReports

    def metrics_dict(self) -> dict[str, Any]:
        return self.metrics.as_dict()


# The run.


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


def warmup_requests(split: SeriesSplit, window_size: int, state_size: int) -> list[WarmupRequest]:
    """Each signature once with one series and once with a small batch."""
    train = split.train
    windows = np.stack([train[-window_size - offset : len(train) - offset] for offset in range(4)])
    values = train[-4:]
    states = np.zeros((4, state_size), np.float32)
    return [
        WarmupRequest(WINDOW_SIGNATURE, {WINDOW_INPUT: windows[:1]}),
        WarmupRequest(WINDOW_SIGNATURE, {WINDOW_INPUT: windows}),
        WarmupRequest(STEP_SIGNATURE, {VALUE_INPUT: values[:1], STATE: states[:1]}),
        WarmupRequest(STEP_SIGNATURE, {VALUE_INPUT: values, STATE: states}),
        WarmupRequest(PRIME_SIGNATURE, prime_chunk(train[None, :PRIME_CHUNK], states[:1])),
        WarmupRequest(PRIME_SIGNATURE, prime_chunk(windows, states)),
        metadata_warmup(),
    ]


def prime_chunk(values: np.ndarray, state: np.ndarray) -> dict[str, np.ndarray]:
    """The inputs of one ``prime`` call: values [B, <= PRIME_CHUNK] padded to the signature's
    width, their count, and the state [B, S] before them."""
    rows, count = values.shape
    history = np.zeros((rows, PRIME_CHUNK), np.float32)
    history[:, :count] = values
    return {
        HISTORY_INPUT: history,
        COUNT_INPUT: np.full(rows, count, np.int32),
        STATE: np.asarray(state, np.float32),
    }


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


def train(config: ForecasterConfig, options: RunOptions) -> ForecasterResult:
    """Train, compare with the peers, check the sine, and publish a new version."""
    seed_everything(config.seed)
    split = load_airpassengers_split()
    reports = RunReports.create(options.reports_dir, MODEL_NAME, config.profile)
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

    started = time.perf_counter()
    history = model.fit(
        sequences.inputs,
        sequences.targets,
        sample_weight=sequences.weights,
        epochs=config.epochs,
        batch_size=config.batch_size,
        validation_data=(holdout.inputs, holdout.targets, holdout.weights),
        shuffle=True,
        callbacks=[reports.tensorboard()],
        verbose=options.verbose,
    )
    train_seconds = time.perf_counter() - started
    reports.save(plot_history(history, "forecaster: GRU on AirPassengers"), TRAINING_CURVES)

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
    reports.save(
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
    reports.save(plot_history(sine_history, "sanity check: GRU on a sine wave"), SINE_CURVES)
    reports.save(plot_sine(sine), SINE_PICTURE)
    created = datetime.now(UTC).isoformat(timespec="seconds")

    def metrics_for(version: int) -> ForecasterMetrics:
        return ForecasterMetrics(
            model=MODEL_NAME,
            version=version,
            profile=config.profile,
            rmse=model_rmse,
            window_rmse=rmse(forecasts.one_step, split.test),
            peers=peers,
            ratio_to_seasonal_naive=model_rmse / peers.seasonal_naive,
            sine=SineMetrics(rmse=sine.rmse, steps=len(sine.generated)),
            n_train=len(split.train),
            n_test=len(split.test),
            window_size=config.window_size,
            state_size=model.state_size,
            epochs=config.epochs,
            train_seconds=round(train_seconds, 3),
            created=created,
            seed=config.seed,
        )

    published = publish_model(
        options.models_dir,
        MODEL_NAME,
        lambda directory: export_endpoints(directory, [model], functions.endpoints()),
        lambda version: metrics_for(version).as_dict(),
        warmup_requests(split, config.window_size, model.state_size),
    )
    return ForecasterResult(
        model=model,
        config=config,
        split=split,
        functions=functions,
        forecasts=forecasts,
        sine=sine,
        metrics=metrics_for(published.version),
        published=published,
        reports=reports,
    )


def run(options: RunOptions) -> ForecasterResult:
    """The CLI's entry: a named profile, optionally with another seed."""
    return train(profile_config(PROFILES, options), options)
