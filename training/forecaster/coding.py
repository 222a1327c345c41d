"""How the series is coded for the network: raw values are taken to log space (or kept), and
the network sees scaled values or scaled month-on-month changes; ``SeriesCoding`` does this both
in the graph (so the export takes and gives raw values) and in NumPy (for the training targets),
with its center and scale fitted on training values only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf


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

    def chunk_inputs(self, current: tf.Tensor, previous: tf.Tensor, seen: tf.Tensor) -> tf.Tensor:
        """The network inputs [B, T] for transformed values [B, T] that follow ``previous`` [B]
        (``seen`` 0: nothing came before): each what ``step_inputs`` gives it, in one pass."""
        before = tf.concat([previous[:, tf.newaxis], current[:, :-1]], axis=1)
        had = tf.concat([seen[:, tf.newaxis], tf.ones_like(current[:, :-1])], axis=1)
        return self.step_inputs(current, before, had)[:, 0]

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
