"""BENCHMARKS.md: the command, the machine, and each comparison as ratios beside the numbers."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from benchmarks.batching import BatchingResults, BatchingRow, ModelAlone
from benchmarks.footprint import InstalledSize, ProcessFootprint
from benchmarks.gateway_overhead import PATHS, Metric, OverheadResults, OverheadRow
from benchmarks.generation import (
    HORIZON,
    STRATEGIES,
    TARGET_CONCURRENCY,
    ForecasterAlone,
    GenerationRow,
)
from benchmarks.harness import Measurement
from benchmarks.similarity import K, SimilarityResult
from benchmarks.stages import STAGES, WORKLOADS, Cost, StagesResults
from benchmarks.targets import FOOTPRINT_TARGETS, OVERHEAD_TARGETS

THROUGHPUT_TARGET = 3.0  # batching on / off at 32 outstanding requests
LATENCY_TARGET = 1.2  # batching on / off p50 at 1 outstanding request
GENERATION_TARGET = 10.0  # continuous batching / window re-feed throughput at 64 calls


@dataclass(frozen=True)
class Results:
    batching: BatchingResults
    model_alone: ModelAlone
    overhead: OverheadResults
    stages: StagesResults
    generation: list[GenerationRow]
    forecaster_alone: ForecasterAlone
    similarity: SimilarityResult
    footprints: list[ProcessFootprint]


def render(command: str, facts: Mapping[str, str], results: Results) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `{command}`. Every comparison runs side by side in one run, on one "
        "machine, and is reported as a ratio with the absolute numbers beside it. Unless a "
        "section says otherwise, each number comes from 2-second windows, measured until three "
        "in a row agree within 10% on throughput and median latency (*unstable* marks a "
        "measurement that never settled). "
        "The benchmark client is an asyncio gRPC client holding N requests outstanding; it runs "
        "on the same cores as the servers.",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in facts.items()),
        "",
        *_overhead_section(results.overhead),
        *_stages_section(results.stages),
        *_batching_section(results.batching, results.model_alone),
        *_generation_section(results.generation, results.forecaster_alone),
        *_similarity_section(results.similarity),
        *_footprint_section(results.footprints),
    ]
    return "\n".join(lines) + "\n"


def _overhead_section(results: OverheadResults) -> list[str]:
    window = results.window
    lines = [
        "## Gateway overhead",
        "",
        "`Classify` (one wine row) and `RecognizeDigits` (one 56x56 PNG) three ways: **direct**, "
        "the Predict the gateway makes of them (the same tensors and pinned version) sent "
        "straight to the model server; **proxy**, the same Predict through a bare pass-through "
        "gRPC proxy in a process of its own (`benchmarks/proxy.py`: grpc.aio, request and reply "
        "passed on as bytes over one channel, no TensorFlow), the floor for any Python hop; and "
        "**gateway**, the gateway's own RPC. One client, then 32 outstanding requests "
        "(saturation). Model server with batching on, as deployed. The gateway writes no line "
        "per call, as deployed: its access lines are DEBUG lines.",
        "",
        f"Each path gets one {window.length_s:g}-second window after a {window.warmup_s:g}-second "
        f"warm-up, in {results.repetitions} repetitions whose order alternates (direct, proxy, "
        "gateway; then gateway, proxy, direct; ...), so that the machine drifting during the run "
        "weighs on every path alike. The numbers are medians over the repetitions; the ratios "
        "are medians of the ratios within each repetition. CPU per request is the process's "
        "user and system CPU time over the window (`/proc/<pid>/stat`), divided by the requests "
        "completed in it; the direct path has no process of its own in between.",
        "",
        "| RPC | outstanding | path | req/s | p50 / p99 ms | CPU per request, ms |",
        "|---|---|---|---|---|---|",
    ]
    for row in results.rows:
        for path in PATHS:
            errors = row.errors(path)
            rate = f"{row.median(path, 'throughput'):.0f}" + (
                f", {errors} errors" if errors else ""
            )
            cpu = row.median(path, "cpu_ms_per_request")
            lines.append(
                f"| {row.rpc} | {row.concurrency} | {path} | {rate} "
                f"| {row.median(path, 'p50_ms'):.2f} / {row.median(path, 'p99_ms'):.2f} "
                f"| {'' if math.isnan(cpu) else f'{cpu:.3f}'} |"
            )
    lines += [
        "",
        "| RPC | outstanding | p50 gateway/proxy | throughput gateway/proxy | CPU gateway/proxy "
        "| p50 gateway/direct | throughput gateway/direct |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {row.rpc} | {row.concurrency} | {row.ratio('p50_ms'):.2f}x "
            f"| {row.ratio('throughput'):.2f}x | {row.ratio('cpu_ms_per_request'):.2f}x "
            f"| {row.ratio('p50_ms', to='direct'):.2f}x "
            f"| {row.ratio('throughput', to='direct'):.2f}x |"
            for row in results.rows
        ),
        "",
        *_overhead_targets(results.rows),
        "",
        "What limits it: the proxy pays for one more gRPC hop in a Python process of its own and "
        "nothing else, so gateway/proxy is what the gateway's own work costs: parsing and "
        "validating the request, preprocessing (decoding the PNG), building the Predict and "
        "shaping the reply. At saturation every process competes with the model server and the "
        "client for the same cores, so the CPU a request costs in the gateway bounds its "
        "throughput.",
        "",
    ]
    return lines


def _stages_section(results: StagesResults) -> list[str]:
    by_stage = {row.stage: row for row in results.rows}
    lines = [
        "## Gateway per-stage costs",
        "",
        "Where the gateway's own CPU goes on the hot path, for the same two requests as above: "
        "each stage run alone, in-process, with the gateway's own functions, in a timed loop of "
        f"{results.calls} calls, {results.repetitions} repetitions taking turns over the stages; "
        "each number is the median over the repetitions of the process's CPU time "
        "(`time.process_time`) and wall time, per call. The handler layers are measured end to "
        "end instead: a trivial grpc.aio handler (the workload's request bytes in, its "
        "response bytes out) served and called in this process, one call outstanding, "
        f"{results.round_trips} calls a repetition, with the gateway's interceptors as "
        "`services/gateway/server.py` installs them (error mapping with the request id, "
        "metrics and access log; the shutdown gate; request decoding) and without, the two "
        "taking turns; the row is the median of the differences within a repetition.",
        "",
        "| stage | what is timed | "
        + " | ".join(f"{rpc}: CPU / wall µs" for rpc in WORKLOADS)
        + " |",
        "|---|---|" + "---|" * len(WORKLOADS),
    ]
    for stage, what in STAGES.items():
        costs = by_stage[stage].costs if stage in by_stage else {}
        cells = " | ".join(_cost(costs.get(rpc)) for rpc in WORKLOADS)
        lines.append(f"| {stage} | {what} | {cells} |")
    bare = results.bare_round_trip
    lines += [
        "",
        "For scale, the round trip without the layers, client and server together: "
        + ", ".join(f"{rpc} {_cost(bare.get(rpc))} µs" for rpc in WORKLOADS)
        + " (CPU / wall).",
        "",
        "These are in-process micro-measurements, side by side in one run: each stage alone and "
        "warm, one call at a time. The rows overlap (the header check is "
        "part of digit preparation; the request id, the access-log line and the metrics are "
        "part of the handler layers) and leave out the two gRPC legs the gateway and the proxy "
        "both pay, so they do not add up to a request. The end-to-end counterpart is the "
        "Gateway overhead section's CPU per request: the gateway's minus the proxy's measures "
        "the gateway's own work in the real process, at one and at 32 outstanding requests.",
        "",
    ]
    return lines


def _cost(cost: Cost | None) -> str:
    """``—`` for a stage that is not on a workload's path."""
    return "—" if cost is None else f"{cost.cpu_us:.1f} / {cost.wall_us:.1f}"


# A metric's name in the targets table, its unit and its decimals.
_METRIC_NAMES: dict[Metric, tuple[str, str, int]] = {
    "p50_ms": ("p50", "ms", 2),
    "throughput": ("throughput", "req/s", 0),
    "cpu_ms_per_request": ("CPU per request", "ms", 3),
}


def _overhead_targets(rows: Sequence[OverheadRow]) -> list[str]:
    """The gateway against the proxy, by OVERHEAD_TARGETS, with both sides' numbers."""
    by_case = {(row.rpc, row.concurrency): row for row in rows}
    lines = [
        "| RPC | gateway against the proxy | gateway | proxy | gateway/proxy | target | |",
        "|---|---|---|---|---|---|---|",
    ]
    for rpc, targets in OVERHEAD_TARGETS.items():
        for target in targets:
            row = by_case.get((rpc, target.concurrency))
            if row is None:
                continue
            name, unit, decimals = _METRIC_NAMES[target.metric]
            ratio = row.ratio(target.metric)
            lines.append(
                f"| {rpc} | {name} at {target.concurrency} outstanding, {unit} "
                f"| {row.median('gateway', target.metric):.{decimals}f} "
                f"| {row.median('proxy', target.metric):.{decimals}f} | {ratio:.2f}x "
                f"| {target.bound.text('x')} | {_met(target.bound.met(ratio))} |"
            )
    return lines


def _batching_section(results: BatchingResults, alone: ModelAlone) -> list[str]:
    return [
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
        *(_batching_row(row) for row in results.rows),
        "",
        *_batching_verdicts(results.rows),
        "",
        _model_alone(alone, results.rows),
        "",
        _transport_ceiling(results),
        "",
    ]


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
        verdicts.append(
            f"- Target: at least {THROUGHPUT_TARGET:.0f}x the throughput at 32 outstanding "
            f"requests with batching on. Measured {ratio:.2f}x: "
            f"{_met(ratio >= THROUGHPUT_TARGET)}."
        )
    if 1 in by_concurrency:
        ratio = by_concurrency[1].p50_ratio
        verdicts.append(
            f"- Target: p50 at 1 outstanding request no worse than {LATENCY_TARGET}x with "
            f"batching on. Measured {ratio:.2f}x: {_met(ratio <= LATENCY_TARGET)}."
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


def _generation_section(rows: Sequence[GenerationRow], alone: ForecasterAlone) -> list[str]:
    lines = [
        "## Forecast generation",
        "",
        f"`Forecast` with a horizon of {HORIZON} from the AirPassengers training series, N "
        "calls outstanding, through the gateway (model server with batching on):",
        "- **window**: the course's naive re-feed, one Predict per step sending the whole "
        "window (O(window) per step);",
        "- **step**: the step signature with explicit recurrent state, one Predict per step "
        "(O(1)), each forecast on its own (a gateway with `--max_generation_batch=1`);",
        "- **continuous batching**: the same primes and steps, those of every forecast in "
        "flight merged into one Predict (the gateway's default).",
        "",
        "| outstanding | "
        + " | ".join(f"{name}: forecasts/s | {name}: p50 / p99 ms" for name in STRATEGIES)
        + " | step / window | continuous / window |",
        "|---|" + "---|---|" * len(STRATEGIES) + "---|---|",
    ]
    for row in rows:
        cells = " | ".join(
            f"{_rate(row.by_strategy[name], 1)} | {_latency(row.by_strategy[name])}"
            for name in STRATEGIES
        )
        lines.append(
            f"| {row.concurrency} | {cells} | {row.speedup('step'):.2f}x "
            f"| {row.speedup('continuous batching'):.2f}x |"
        )
    lines.append("")
    target = {row.concurrency: row for row in rows}.get(TARGET_CONCURRENCY)
    if target is not None:
        ratio = target.speedup("continuous batching")
        lines.append(
            f"- Target: continuous batching at least {GENERATION_TARGET:.0f}x the window "
            f"re-feed's throughput at {TARGET_CONCURRENCY} concurrent calls. Measured "
            f"{ratio:.2f}x: {_met(ratio >= GENERATION_TARGET)}."
        )
    lines.append(
        f"- What limits each. The model's own cost, run in-process: a window prediction takes "
        f"{alone.window_ms:.2f} ms, priming the recurrent state over the {alone.history}-month "
        f"history {alone.prime_ms:.2f} ms ({alone.batch_prime_ms:.2f} ms for "
        f"{TARGET_CONCURRENCY} forecasts in one call), and one step of {TARGET_CONCURRENCY} "
        f"forecasts together {alone.step_ms:.2f} ms. The window and step strategies make "
        f"{HORIZON} model-server calls per forecast, each forecast its own (step's first is "
        "the prime), so they are bound by the per-call cost of two Python gRPC servers. "
        "Continuous batching shares every call among the forecasts in flight: one prime call "
        "per 240-value chunk of history for all forecasts priming at that moment, and one call "
        "per step for all forecasts generating, so forecasts started together make "
        f"{HORIZON} calls between them (one prime, {HORIZON - 1} steps) rather than {HORIZON} "
        "each."
    )
    if target is not None:
        batched = target.by_strategy["continuous batching"].throughput
        one_by_one = batched * alone.prime_ms / 1000
        together = batched * alone.batch_prime_ms / TARGET_CONCURRENCY / 1000
        lines.append(
            f"  At {TARGET_CONCURRENCY} outstanding it finished {batched:.0f} forecasts/s, whose "
            f"primes would need {one_by_one:.2f} s of model-server CPU a second one by one, and "
            f"{together:.2f} s in calls of {TARGET_CONCURRENCY}, on this two-core machine, "
            "beside the gateway, the client and every step."
        )
    return [*lines, ""]


def _similarity_section(result: SimilarityResult) -> list[str]:
    gensim = result.gensim
    lines = [
        "## Similar words",
        "",
        f"`SimilarWords` (k={K}) for the {result.vocabulary_size}-word, "
        f"{result.dimensions}-dimension vocabulary of the served word2vec version, through the "
        "gateway, against gensim's `KeyedVectors.most_similar` on the same vectors, in-process, "
        "one query after another (the peer a user would pick instead).",
        "",
        "| | outstanding | queries/s | p50 / p99 ms | gateway / gensim throughput |",
        "|---|---|---|---|---|",
        f"| gensim in-process | 1 | {gensim.throughput:.0f} | {gensim.p50_ms:.3f} / "
        f"{gensim.p99_ms:.3f} | |",
    ]
    for measurement in result.gateway:
        lines.append(
            f"| gateway | {measurement.concurrency} | {_rate(measurement)} "
            f"| {_latency(measurement)} | {measurement.throughput / gensim.throughput:.2f}x |"
        )
    lines += [
        "",
        "What limits it: gensim's lookup is a numpy matrix-vector product in the caller's own "
        "process, with no network, serialisation or request validation. Through the gateway, a "
        "query crosses two gRPC hops and two Python servers; the in-graph top-k itself is a "
        "small part of the time at this vocabulary size. The service pays for isolation, "
        "versioning and sharing one copy of the vectors among many clients.",
        "",
    ]
    return lines


def _footprint_section(footprints: Sequence[ProcessFootprint]) -> list[str]:
    lines = [
        "## Footprint",
        "",
        "Resident memory of each process once it serves all five models, its peak (high-water "
        "mark) after every benchmark above ran against it, and the time from starting the "
        "process until it served all five.",
        "",
        "| process | start until serving, s | resident after start, MiB | peak resident, MiB |",
        "|---|---|---|---|",
        *(
            f"| {f.name} | {f.seconds_to_serving:.1f} | {f.rss_after_start_mib:.0f} "
            f"| {f.peak_rss_mib:.0f} |"
            for f in footprints
        ),
        "",
        *_footprint_targets(footprints),
        "What limits it: the model server imports TensorFlow, holds every model's graph and "
        "variables, and loads and warms up each model before it reports SERVING. The gateway "
        "imports no TensorFlow: it speaks TensorFlow Serving's wire format with messages of "
        "its own (protos/tfserving), so its memory is Python, gRPC, numpy and Pillow, and its "
        "start is mostly importing them and one status check per model.",
        "",
    ]
    return lines


def _footprint_targets(footprints: Sequence[ProcessFootprint]) -> list[str]:
    """Each process with FOOTPRINT_TARGETS against them, and what its dependencies hold."""
    lines = []
    for footprint in footprints:
        targets = FOOTPRINT_TARGETS.get(footprint.name, ())
        if not targets:
            continue
        lines += [
            f"| {footprint.name} | measured | target | |",
            "|---|---|---|---|",
            *(
                f"| {target.label} | {target.value(footprint):.{target.decimals}f}{target.unit} "
                f"| {target.bound.text(target.unit)} "
                f"| {_met(target.bound.met(target.value(footprint)))} |"
                for target in targets
            ),
            "",
        ]
        if footprint.dependencies is not None:
            lines += [_dependencies_line(footprint.name, footprint.dependencies), ""]
    return lines


def _dependencies_line(process: str, dependencies: InstalledSize) -> str:
    largest = ", ".join(f"{name} {size / 1e6:.0f} MB" for name, size in dependencies.largest(3))
    line = (
        f"The {process}'s own dependencies: the project's {dependencies.requirement_set} in "
        f"pyproject.toml and all they require, {len(dependencies.bytes_by_distribution)} "
        f"installed distributions, {dependencies.megabytes:.0f} MB (10^6 bytes) of files; the "
        f"largest: {largest}."
    )
    if dependencies.missing:
        line += f" Required but not installed here, not counted: {', '.join(dependencies.missing)}."
    return line


def replace_section(document: str, heading: str, section: str) -> str:
    """The document with the section under ``heading`` (up to the next "## ") replaced by
    ``section``, or with ``section`` appended if it has none."""
    start = document.find(f"{heading}\n")
    if start < 0:
        return document.rstrip("\n") + ("\n\n" if document else "") + section
    end = document.find("\n## ", start + len(heading))
    rest = document[end + 1 :] if end >= 0 else ""
    return document[:start] + section + ("\n" + rest if rest else "")


def section_of(document: str, heading: str) -> str:
    """The section under ``heading``, up to the next "## ", or ""."""
    start = document.find(f"{heading}\n")
    if start < 0:
        return ""
    end = document.find("\n## ", start + len(heading))
    return document[start : end if end >= 0 else len(document)].rstrip("\n") + "\n"


def _met(ok: bool) -> str:
    return "met" if ok else "missed"


def _rate(measurement: Measurement, decimals: int = 0) -> str:
    note = "" if measurement.stable else " (unstable)"
    errors = f", {measurement.errors} errors" if measurement.errors else ""
    return f"{measurement.throughput:.{decimals}f}{note}{errors}"


def _latency(measurement: Measurement) -> str:
    return f"{measurement.p50_ms:.2f} / {measurement.p99_ms:.2f}"
