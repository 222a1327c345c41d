"""The ``forecaster`` contract: step-by-step generation of a monthly series
(training/forecaster/). Raw series values in and out (the scaling lives in the graph);
S = ``state_size``, W = ``window_size``, both in ``metadata``:

- ``window`` (also ``serving_default``): ``window`` float32 [-1, W] raw past values, oldest
  first -> ``next_value`` float32 [-1]; the same as ``prime`` on that window.
- ``step``: ``value`` float32 [-1] (the newest raw value), ``state`` float32 [-1, S]
  -> ``prediction`` float32 [-1] (the raw value after it), ``state`` float32 [-1, S].
- ``prime``: ``history`` float32 [-1, C] (C = ``PRIME_CHUNK`` raw values, oldest first, the
  first ``count`` of them real and the rest padding), ``count`` int32 [-1], ``state`` float32
  [-1, S] -> ``prediction`` float32 [-1], ``state`` float32 [-1, S]: ``step`` over the real
  values, from ``state``, in one call. A longer history is primed chunk by chunk, from the zero
  state (all zeros is the state before any value). The fixed width keeps every prime request
  the same shape, so TensorFlow Serving's batching can merge any of them.
- ``metadata`` (see ``common``): ``rows`` int32 [-1] -> ``window_size`` int64 [-1],
  ``state_size`` int64 [-1], ``min_history`` int64 [-1] (1) and ``min_value`` float32 [-1]
  (values are raised to it before the log, so clients should send positive values), the same
  in every row.

Changing any of these names or C breaks clients.
"""

from __future__ import annotations

MODEL_NAME = "forecaster"
WINDOW_SIGNATURE = "window"
STEP_SIGNATURE = "step"
PRIME_SIGNATURE = "prime"
WINDOW_INPUT = "window"
NEXT_VALUE_OUTPUT = "next_value"
VALUE_INPUT = "value"
STATE = "state"  # an input and an output of step and prime
HISTORY_INPUT = "history"
COUNT_INPUT = "count"
PRIME_CHUNK = 240
PREDICTION_OUTPUT = "prediction"
WINDOW_SIZE_METADATA = "window_size"
STATE_SIZE_METADATA = "state_size"
MIN_HISTORY_METADATA = "min_history"
MIN_VALUE_METADATA = "min_value"
