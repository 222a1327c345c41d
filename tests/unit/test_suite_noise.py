"""The suite keeps TensorFlow's unsilenceable start-up lines out of its terminal, and only them."""

from __future__ import annotations

import pytest

from services.suite.noise import is_startup_noise, without_startup_noise

# As TensorFlow 2.21 prints them on import, on a machine without a GPU.
STARTUP_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1796168476.712083    2802 port.cc:153] oneDNN custom operations are on. You may "
    "see slightly different numerical results due to floating-point round-off errors.\n",
    "I0000 00:00:1796168476.712360    2802 cudart_stub.cc:31] Could not find cuda drivers on your "
    "machine, GPU will not be used.\n",
    "E0000 00:00:1796168480.828604    2802 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
    "CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n",
]
KEPT_LINES = [
    "2026-12-01 22:35:58,088 INFO services.modelserver: Model server listening on port 36587\n",
    "E0000 00:00:1796168480.828604    2802 saved_model.cc:12] could not read the model\n",
    "W0000 00:00:1796168480.828604    2802 op_kernel.cc:1] an op warned\n",
    "Traceback (most recent call last):\n",
    "  I0000 00:00:1 x.cc:1] indented: part of something else\n",
]


@pytest.mark.parametrize("line", STARTUP_LINES)
def test_tensorflows_startup_lines_are_noise(line: str) -> None:
    assert is_startup_noise(line)


@pytest.mark.parametrize("line", KEPT_LINES)
def test_every_other_line_passes(line: str) -> None:
    assert not is_startup_noise(line)


def test_the_filter_keeps_the_order_of_what_passes() -> None:
    mixed = [KEPT_LINES[0], *STARTUP_LINES, KEPT_LINES[1], STARTUP_LINES[0], KEPT_LINES[3]]
    assert list(without_startup_noise(mixed)) == [KEPT_LINES[0], KEPT_LINES[1], KEPT_LINES[3]]
