"""BENCHMARKS.md: the command, the machine, and each comparison as ratios beside the numbers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from benchmarks.batching import BatchingResults, BatchingRow, ModelAlone
from benchmarks.harness import Measurement

THROUGHPUT_TARGET = 3.0  # batching on / off at 32 outstanding requests
LATENCY_TARGET = 1.2  # batching on / off p50 at 1 outstanding request


def render(
    command: str,
    facts: Mapping[str, str],
    batching: BatchingResults,
    model_alone: ModelAlone,
) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `{command}`. Every comparison runs side by side in one run, on one "
        "machine, and is reported as a ratio with the absolute numbers beside it. Each number "
        "comes from 2-second windows, measured until three in a row agree within 10% on "
        "throughput and median latency (*unstable* marks a measurement that never settled).",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in facts.items()),
        "",
        "## Model server: dynamic batching off and on",
        "",
        "CNN `Predict` of one 28x28 image per request, with N requests outstanding, against two "
        "model server processes serving the same version. One has no batching; the other has "
        "`--enable_batching` with `max_batch_size` 64, `batch_timeout_micros` 0 and two batch "
        "threads.",
        "",
        "| outstanding | off: req/s | off: p50 / p99 ms | on: req/s | on: p50 / p99 ms "
        "| throughput on/off | p50 on/off |",
        "|---|---|---|---|---|---|---|",
        *(_batching_row(row) for row in batching.rows),
        "",
        *_batching_verdicts(batching.rows),
        "",
        _model_alone(model_alone, batching.rows),
        "",
        _transport_ceiling(batching),
    ]
    return "\n".join(lines) + "\n"


def _batching_row(row: BatchingRow) -> str:
    return (
        f"| {row.concurrency} | {_rate(row.off)} | {_latency(row.off)} | {_rate(row.on)} "
        f"| {_latency(row.on)} | {row.throughput_ratio:.2f}x | {row.p50_ratio:.2f}x |"
    )


def _batching_verdicts(rows: Sequence[BatchingRow]) -> list[str]:
    by_concurrency = {row.concurrency: row for row in rows}
    verdicts = []
    if 32 in by_concurrency:
        ratio = by_concurrency[32].throughput_ratio
        met = "met" if ratio >= THROUGHPUT_TARGET else "missed"
        verdicts.append(
            f"- Target: at least {THROUGHPUT_TARGET:.0f}x the throughput at 32 outstanding "
            f"requests with batching on. Measured {ratio:.2f}x: {met}."
        )
    if 1 in by_concurrency:
        ratio = by_concurrency[1].p50_ratio
        met = "met" if ratio <= LATENCY_TARGET else "missed"
        verdicts.append(
            f"- Target: p50 at 1 outstanding request no worse than {LATENCY_TARGET}x with "
            f"batching on. Measured {ratio:.2f}x: {met}."
        )
    return verdicts


def _model_alone(alone: ModelAlone, rows: Sequence[BatchingRow]) -> str:
    per_image = alone.batch_ms / alone.batch_size
    speedup = alone.single_ms / per_image
    served = {row.concurrency: row for row in rows}
    off_1 = served[1].off.p50_ms if 1 in served else float("nan")
    return (
        f"What limits it: the CNN alone, run in-process without a server, takes "
        f"{alone.single_ms:.2f} ms for one image and {alone.batch_ms:.2f} ms for "
        f"{alone.batch_size} ({per_image:.2f} ms an image), so batching can make the model "
        f"itself at most {speedup:.1f}x faster. But a served request takes {off_1:.2f} ms at "
        f"one outstanding: most of it is the Python gRPC server's own work per request (and "
        f"the benchmark client shares the same cores), which batching does not shorten. The "
        f"rows at 8 and 32 are bounded by that per-request cost, not by the model."
    )


def _transport_ceiling(results: BatchingResults) -> str:
    ceiling = results.transport_ceiling
    off = {row.concurrency: row.off for row in results.rows}.get(ceiling.concurrency)
    bound = ceiling.throughput / off.throughput if off else float("nan")
    return (
        f"The transport's own ceiling: `GetModelStatus`, which carries no tensor and runs no "
        f"model, on the batching server with the same client and {ceiling.concurrency} "
        f"outstanding, answers {_rate(ceiling)} req/s ({_latency(ceiling)} ms p50 / p99). "
        f"That is {bound:.2f}x the batching-off Predict throughput, and it bounds what any "
        f"batching could reach on this machine: a batched Predict still parses a tensor, "
        f"builds a response and passes through the same gRPC server loop."
    )


def _rate(measurement: Measurement) -> str:
    note = "" if measurement.stable else " (unstable)"
    errors = f", {measurement.errors} errors" if measurement.errors else ""
    return f"{measurement.throughput:.0f}{note}{errors}"


def _latency(measurement: Measurement) -> str:
    return f"{measurement.p50_ms:.2f} / {measurement.p99_ms:.2f}"
