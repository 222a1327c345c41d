"""TensorFlow's start-up lines, which no setting turns off, kept out of the suite's terminal.

TensorFlow's C++ code logs a few lines before its logging is set up, so TF_CPP_MIN_LOG_LEVEL
does not reach them: absl's notice that it is not initialised, INFO lines about oneDNN and
missing CUDA drivers, and on a machine without a GPU an ERROR that cuInit failed. They say
nothing a user of the suite can act on; every other line of a child passes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

_STARTUP_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    # Lines logged before absl is set up carry a zero time of day: "I0000 00:00:<epoch>".
    r"|I0000 00:00:\S+\s+\d+ \S+:\d+\] "
    r"|E0000 00:00:\S+\s+\d+ cuda_platform\.cc:\d+\] failed call to cuInit: "
)


def is_startup_noise(line: str) -> bool:
    return _STARTUP_NOISE.match(line) is not None


def without_startup_noise(lines: Iterable[str]) -> Iterator[str]:
    return (line for line in lines if not is_startup_noise(line))
