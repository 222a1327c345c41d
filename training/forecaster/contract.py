"""The names the export's signatures are served under, the tensors they take and give, and the
fixed width of a ``prime`` call: the contract the gateway's generator relies on (see the
package's docstring for the signatures themselves). Changing any of them breaks clients."""

from __future__ import annotations

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
