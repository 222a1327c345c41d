"""Resident memory and start-up time of the model server (all five models) and the gateway."""

from __future__ import annotations

from dataclasses import dataclass

from services.suite.stack import Started, memory_mib


@dataclass(frozen=True)
class ProcessFootprint:
    name: str
    seconds_to_serving: float
    rss_after_start_mib: float
    peak_rss_mib: float = 0.0  # the high-water mark, read after every benchmark ran


def at_start(name: str, started: Started) -> ProcessFootprint:
    return ProcessFootprint(
        name, started.seconds_to_serving, memory_mib(started.child.pid, "VmRSS")
    )


def with_peak(footprint: ProcessFootprint, started: Started) -> ProcessFootprint:
    return ProcessFootprint(
        footprint.name,
        footprint.seconds_to_serving,
        footprint.rss_after_start_mib,
        memory_mib(started.child.pid, "VmHWM"),
    )
