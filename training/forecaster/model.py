"""The Keras model: one ``GRUCell`` that ``RecurrentForecaster`` runs over whole sequences for
training (``call``) and once a value for serving (``prime``, ``step``, ``advance``), so a
forecast generated step by step gives the trained model's numbers; ``build_model`` compiles it
with Adam and, optionally, an exponential moving average of the weights."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from training.forecaster.coding import SeriesCoding

# The state after the hidden vector: the last value (transformed) and a "seen a value" flag.
_EXTRA_STATE = 2


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
        hidden, previous, seen = self._parts(state)
        current = self.coding.transform(value)
        # The very cell the RNN layer runs in `call` and `prime`: the same weights and numbers.
        output, _ = self.rnn.cell(self.coding.step_inputs(current, previous, seen), [hidden])
        return self._state(output, current)

    def advance_chunk(self, values: tf.Tensor, count: tf.Tensor, state: tf.Tensor) -> tf.Tensor:
        """The state after the first ``count`` [B] raw values of each row of ``values`` [B, T]:
        ``advance`` value after value, bit for bit, but with what does not depend on the state
        (the coding, the input kernel's product) done for the whole chunk before the loop, so
        the loop runs the recurrence alone. The cell's own arithmetic, as GRUCell (with
        ``reset_after``) runs it."""
        cell = self.rnn.cell
        hidden, previous, seen = self._parts(state)
        current = self.coding.transform(values)
        # Only as many steps as the longest row has values: a short history in a fixed-width
        # chunk does not pay for the padding after it.
        steps = tf.reduce_max(count)
        inputs = self.coding.chunk_inputs(current, previous, seen)[:, :steps]
        input_bias, recurrent_bias = cell.bias[0], cell.bias[1]
        by_position = tf.reshape(tf.transpose(inputs), [-1, 1])  # [T * B, 1], position-major
        projected = tf.reshape(
            tf.matmul(by_position, cell.kernel) + input_bias,
            [steps, tf.shape(values)[0], 3 * self.units],
        )

        def recur(position: tf.Tensor, h: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            x_z, x_r, x_h = tf.split(projected[position], 3, axis=-1)
            inner = tf.matmul(h, cell.recurrent_kernel) + recurrent_bias
            z = cell.recurrent_activation(x_z + inner[:, : self.units])
            r = cell.recurrent_activation(x_r + inner[:, self.units : 2 * self.units])
            candidate = cell.activation(x_h + r * inner[:, 2 * self.units :])
            following = z * h + (1 - z) * candidate
            real = position < count  # padding leaves a row as it was
            return position + 1, tf.where(real[:, tf.newaxis], following, h)

        _, final = tf.while_loop(
            lambda position, _: position < steps,
            recur,
            (tf.constant(0), hidden),
            parallel_iterations=1,
        )
        last = tf.gather(current, tf.maximum(count - 1, 0), batch_dims=1)
        return tf.where((count > 0)[:, tf.newaxis], self._state(final, last), state)

    def predict_next(self, state: tf.Tensor) -> tf.Tensor:
        """The raw value after the one a state has last seen."""
        hidden, current = state[:, : self.units], state[:, self.units]
        return self.coding.decode(current, self.head(hidden)[:, 0])

    def _parts(self, state: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """A state's hidden vector [B, units], last transformed value [B] and seen flag [B]."""
        return state[:, : self.units], state[:, self.units], state[:, self.units + 1]

    def _state(self, hidden: tf.Tensor, current: tf.Tensor) -> tf.Tensor:
        seen = tf.ones_like(current)
        return tf.concat([hidden, current[:, tf.newaxis], seen[:, tf.newaxis]], axis=1)


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
