"""What the suite reads of a running process in /proc: its CPU time."""

from __future__ import annotations

import os
import time

from benchmarks.stack import cpu_seconds


def test_the_cpu_time_of_a_process_grows_with_busy_work() -> None:
    before = cpu_seconds(os.getpid())
    busy_until = time.process_time() + 0.2
    while time.process_time() < busy_until:
        pass
    after = cpu_seconds(os.getpid())
    # /proc counts in clock ticks (10 ms at the usual 100 Hz).
    assert after - before >= 0.15
    assert after <= time.process_time() + 0.05
