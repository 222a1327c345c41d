"""What decides what a run learns: ``ForecasterConfig`` for the GRU on AirPassengers, with the
``SineConfig`` of its sanity check inside it, and the named profiles (``quick``, ``full``) the
CLI picks from."""

from __future__ import annotations

from dataclasses import dataclass


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
PROFILES = (QUICK, FULL)
