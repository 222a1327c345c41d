"""`make soak`: a long Locust run against the suite in processes of its own, watching memory.

Reports the throughput minute by minute and each process's resident memory, and writes the
"Soak" section of BENCHMARKS.md (`make bench` keeps it). Target: resident memory grows less than
5% from the end of the warm-up to the end of the run.

python -m benchmarks.soak [--minutes 10] [--warmup-minutes 2] [--users 8] [--models-dir models]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.report import replace_section
from benchmarks.stack import memory_mib, serving_stack

LOCUSTFILE = Path(__file__).resolve().parents[1] / "tests" / "load" / "locustfile.py"
SAMPLE_S = 10
GROWTH_TARGET = 0.05
HEADING = "## Soak"


@dataclass(frozen=True)
class Sample:
    minute: int
    model_server_mib: float
    gateway_mib: float


@dataclass(frozen=True)
class SoakResult:
    minutes: int
    warmup_minutes: int
    users: int
    requests: int
    failures: int
    per_minute_rps: dict[int, float]
    samples: list[Sample]

    def growth(self, process: str) -> tuple[float, float, float]:
        """(resident MiB at the end of the warm-up, at the end, relative growth)."""
        after_warmup = [s for s in self.samples if s.minute >= self.warmup_minutes]
        start = getattr(after_warmup[0], f"{process}_mib")
        end = getattr(self.samples[-1], f"{process}_mib")
        return start, end, end / start - 1


def run(models_dir: Path, minutes: int, warmup_minutes: int, users: int) -> SoakResult:
    from services.suite.trainer import train_missing

    train_missing(models_dir, "quick")
    reports = Path("reports")
    reports.mkdir(exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as work,
        serving_stack(models_dir, Path(work), {"default": ["--log_level=WARNING"]}) as stack,
    ):
        options = f"--headless --users {users} --spawn-rate {users} --run-time {minutes}m"
        locust = subprocess.Popen(
            [
                *(sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)),
                *options.split(),
                *("--stop-timeout", "15", "--only-summary", "--csv", str(reports / "soak")),
                *("--host", f"localhost:{stack.gateways['default'].port}"),
            ]
        )
        started = time.monotonic()
        samples = []
        while locust.poll() is None:
            minute = int((time.monotonic() - started) // 60)
            samples.append(
                Sample(
                    minute,
                    memory_mib(stack.model_server.child.pid, "VmRSS"),
                    memory_mib(stack.gateways["default"].child.pid, "VmRSS"),
                )
            )
            time.sleep(SAMPLE_S)
    per_minute, requests, failures = _throughput(reports / "soak_stats_history.csv")
    return SoakResult(minutes, warmup_minutes, users, requests, failures, per_minute, samples)


def _throughput(history: Path) -> tuple[dict[int, float], int, int]:
    """Mean requests/s per minute of the run, and the final request and failure counts."""
    by_minute: dict[int, list[float]] = defaultdict(list)
    requests = failures = 0
    first = None
    with history.open() as rows:
        for row in csv.DictReader(rows):
            if row["Name"] != "Aggregated":
                continue
            stamp = int(row["Timestamp"])
            first = stamp if first is None else first
            by_minute[(stamp - first) // 60].append(float(row["Requests/s"]))
            requests, failures = int(row["Total Request Count"]), int(row["Total Failure Count"])
    means = {minute: sum(rates) / len(rates) for minute, rates in sorted(by_minute.items())}
    return means, requests, failures


def render(result: SoakResult) -> str:
    last_sample = {s.minute: s for s in result.samples}
    lines = [
        HEADING,
        "",
        f"Produced by `make soak`: {result.users} Locust users calling every RPC for "
        f"{result.minutes} minutes against a model server (five models, batching on) and a "
        f"gateway, each in its own process. {result.requests} calls, {result.failures} failed.",
        "",
        "| minute | requests/s | model server resident MiB | gateway resident MiB |",
        "|---|---|---|---|",
    ]
    for minute, rate in result.per_minute_rps.items():
        sample = last_sample.get(minute)
        memory = f"{sample.model_server_mib:.0f} | {sample.gateway_mib:.0f}" if sample else "- | -"
        lines.append(f"| {minute + 1} | {rate:.0f} | {memory} |")
    lines.append("")
    for process, name in (("model_server", "model server"), ("gateway", "gateway")):
        start, end, growth = result.growth(process)
        met = "met" if growth < GROWTH_TARGET else "missed"
        lines.append(
            f"- {name}: {start:.0f} MiB after the {result.warmup_minutes}-minute warm-up, "
            f"{end:.0f} MiB at the end: {growth:+.1%}. Target under "
            f"{GROWTH_TARGET:.0%}: {met}."
        )
    rates = list(result.per_minute_rps.values())
    if len(rates) > result.warmup_minutes + 1:
        first, last = rates[result.warmup_minutes], rates[-1]
        lines.append(
            f"- Throughput after the warm-up: {first:.0f} requests/s in its first minute, "
            f"{last:.0f} in the last ({last / first - 1:+.1%})."
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--warmup-minutes", type=int, default=2)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--output", type=Path, default=Path("BENCHMARKS.md"))
    options = parser.parse_args(argv)
    result = run(options.models_dir.resolve(), options.minutes, options.warmup_minutes,
                 options.users)  # fmt: skip
    section = render(result)
    existing = options.output.read_text() if options.output.exists() else ""
    options.output.write_text(replace_section(existing, HEADING, section))
    sys.stdout.write(section)
    sys.exit(1 if result.failures else 0)


if __name__ == "__main__":
    main()
