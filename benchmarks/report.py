"""BENCHMARKS.md: the command, the machine, and each comparison as ratios beside the numbers."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from benchmarks.batching import (
    CEILING,
    CEILING_CONCURRENCY,
    OFF,
    ON,
    BatchingResults,
    ModelAlone,
)
from benchmarks.footprint import InstalledSize, ProcessFootprint
from benchmarks.gateway_overhead import PATHS, OverheadResults, OverheadRow
from benchmarks.generation import (
    HORIZON,
    STRATEGIES,
    TARGET_CONCURRENCY,
    ForecasterAlone,
    GenerationResults,
)
from benchmarks.harness import Alternation, Metric, Repeated, Spread
from benchmarks.modelserver_stages import (
    BATCHES,
    END_TO_END,
    ModelServerStagesResults,
    SessionRunModel,
)
from benchmarks.modelserver_stages import STAGES as MODELSERVER_STAGES
from benchmarks.modelserver_stages import WORKLOADS as MODELSERVER_WORKLOADS
from benchmarks.similarity import GATEWAY, PEER, K, SimilarityResult, Word2VecQuality
from benchmarks.stages import STAGES, WORKLOADS, Cost, StagesResults
from benchmarks.targets import (
    BATCHING_TARGETS,
    FOOTPRINT_TARGETS,
    GENERATION_TARGETS,
    OVERHEAD_TARGETS,
    SIMILARITY_TARGETS,
    WORD2VEC_SPEARMAN,
    RatioTarget,
)

NOT_MEASURED = "not measured in this run"


@dataclass(frozen=True)
class Results:
    batching: BatchingResults
    model_alone: ModelAlone
    overhead: OverheadResults
    stages: StagesResults
    modelserver_stages: ModelServerStagesResults
    generation: GenerationResults
    forecaster_alone: ForecasterAlone
    similarity: SimilarityResult
    word2vec_quality: Word2VecQuality | None  # the served version's, from its metrics.json
    footprints: list[ProcessFootprint]


def render(command: str, facts: Mapping[str, str], results: Results) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `{command}`. Every comparison runs side by side in one run, on one "
        "machine, and is reported as a ratio with the absolute numbers beside it. The sides "
        "of a comparison take turns: each gets one window of a fixed length per repetition, "
        "after a warm-up of its own, and their order reverses from one repetition to the next "
        "(A, B; then B, A; then A, B; ...), so that the machine drifting during the run weighs "
        "on every side alike. A window lasts its length and then until every outstanding "
        "request has completed at least once, so calls slower than the window are still "
        "measured. Absolute numbers are medians over the repetitions. A ratio is taken within "
        "each repetition and reported as the median of the per-repetition ratios with their "
        f"range after it: `{Spread(1.2, 1.1, 1.31, 3).text()}` is a median of 1.20x, 1.10x "
        "in the lowest repetition and 1.31x in the highest. **A target is met only when the "
        'whole range clears its bound**: for "at least 15x" the smallest per-repetition ratio '
        'must reach 15x, for "at most 1.2x" the largest must stay at or under 1.2x. Each '
        "section gives its window length and number of repetitions. The benchmark client is "
        "an asyncio gRPC client holding N requests outstanding; it runs on the same cores as "
        "the servers.",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in facts.items()),
        "",
        *_overhead_section(results.overhead),
        *_stages_section(results.stages),
        *_modelserver_stages_section(results.modelserver_stages),
        *_batching_section(results.batching, results.model_alone),
        *_generation_section(results.generation, results.forecaster_alone),
        *_similarity_section(results.similarity, results.word2vec_quality),
        *_footprint_section(results.footprints),
    ]
    return "\n".join(lines) + "\n"


def _alternation(alternation: Alternation, sides: Sequence[str]) -> str:
    """How a section's sides took turns, in words."""
    window = alternation.window
    return (
        f"Each side gets one {window.length_s:g}-second window after a {window.warmup_s:g}-second "
        f"warm-up, in {alternation.repetitions} repetitions whose order alternates "
        f"({', '.join(sides)}; then {', '.join(reversed(sides))}; ...). The numbers are medians "
        "over the repetitions; a ratio is the median of the ratios within each repetition, its "
        "range over the repetitions in brackets."
    )


def _overhead_section(results: OverheadResults) -> list[str]:
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
        _alternation(results.alternation, PATHS)
        + " CPU per request is the process's user and system CPU time over the window "
        "(`/proc/<pid>/stat`), divided by the requests completed in it; the direct path has no "
        "process of its own in between.",
        "",
        "| RPC | outstanding | path | req/s | p50 / p99 ms | CPU per request, ms |",
        "|---|---|---|---|---|---|",
    ]
    for row in results.rows:
        for path in PATHS:
            cpu = row.median(path, "cpu_ms_per_request")
            lines.append(
                f"| {row.rpc} | {row.concurrency} | {path} | {_rate(row.measured, path)} "
                f"| {_latency(row.measured, path)} "
                f"| {'' if math.isnan(cpu) else f'{cpu:.3f}'} |"
            )
    lines += [
        "",
        "| RPC | outstanding | p50 gateway/proxy | throughput gateway/proxy | CPU gateway/proxy "
        "| p50 gateway/direct | throughput gateway/direct |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {row.rpc} | {row.concurrency} | {row.ratio('p50_ms').text()} "
            f"| {row.ratio('throughput').text()} | {row.ratio('cpu_ms_per_request').text()} "
            f"| {row.ratio('p50_ms', to='direct').text()} "
            f"| {row.ratio('throughput', to='direct').text()} |"
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


def _modelserver_stages_section(results: ModelServerStagesResults) -> list[str]:
    workloads = MODELSERVER_WORKLOADS
    lines = [
        "## Model server per-stage costs (batched Predict)",
        "",
        "Where a batched `Predict` spends its time in the model server, beside the model: the "
        "CNN's Predict of one 28x28 image (as the batching section sends it) and word2vec's "
        "`similar` of one word with k=10 (as the gateway sends it). Each stage runs alone, in "
        "this process, with the model server's own functions on the versions it serves, in a "
        "timed loop sized to about "
        f"{results.loop_s:g} s (at most {results.calls} calls), {results.repetitions} "
        "repetitions taking turns over the stages; each number is the median over the "
        "repetitions of the process's CPU time (`time.process_time`, every thread: "
        "TensorFlow's and the batch thread's too) and wall time, **per request**: a call that "
        "serves N requests (a batch of N rows, N runs submitted at once) counts 1/N to each. "
        "The batching rows use the local stack's batching parameters (one batch thread, "
        "`max_batch_size` 64, no timeout) and a runner that returns at once, so they are the "
        "session's own bookkeeping without the model. The last row is end to end instead: the "
        "model server started in this process (`start_model_server`, batching on, those "
        "parameters) and called by a client in this process, one call outstanding, "
        f"{results.round_trips} calls a repetition, the Predict taking turns with a "
        "`GetModelStatus` of the same model (no tensor, no model run); the row is the median "
        "of their differences within a repetition.",
        "",
        "| stage | what is timed | requests a call | "
        + " | ".join(f"{w}: CPU / wall µs a request" for w in workloads)
        + " |",
        "|---|---|---|" + "---|" * len(workloads),
    ]
    for stage, (what, share) in MODELSERVER_STAGES.items():
        cells = " | ".join(_cost(results.cost(stage, w)) for w in workloads)
        lines.append(f"| {stage} | {what} | {share} | {cells} |")
    lines += [
        "",
        "For scale, the round trips themselves, client and server together (CPU / wall µs): "
        + "; ".join(
            f"{w}: Predict {_cost(results.predict_round_trip.get(w))}, GetModelStatus "
            f"{_cost(results.status_round_trip.get(w))}"
            for w in workloads
        )
        + ".",
        "",
        "These are in-process micro-measurements, each stage alone and warm. The rows overlap "
        "(the executor hand-off and the merge and split are part of the batching rows) and "
        "leave out what every gRPC call pays, so they do not add up to a request; the end-to-end "
        "row is the counterpart. The batch record runs once a batch, the request metrics once "
        "a request.",
        "",
        *_modelserver_limits(results),
        "",
    ]
    return lines


# The stages the server's Python runs for every request, beside the model and gRPC itself.
_PER_REQUEST = {
    "request parsing": "request parsing",
    "preparation": "preparation",
    "response encoding": "response encoding",
    "metrics, request": "the request's metrics",
}


def _modelserver_limits(results: ModelServerStagesResults) -> list[str]:
    """What limits it, from the numbers: CPU, which bounds throughput on a saturated machine."""

    def cpu(stage: str, workload: str) -> float:
        cost = results.cost(stage, workload)
        return math.nan if cost is None else cost.cpu_us

    batch = BATCHES[0]
    paragraphs = []
    for workload in MODELSERVER_WORKLOADS:
        run = SessionRunModel.of(results, workload, "cpu")
        single = cpu("session run, batch of 1", workload)
        if run is None:
            model = "The session runs were not measured."
        else:
            model = (
                f"A session run costs about {run.fixed_us:.0f} µs of CPU whatever its size plus "
                f"{run.per_row_us:.0f} µs a row, so a request's share of the model is "
                f"{single:.0f} µs alone, {cpu(f'session run, batch of {batch}', workload):.0f} "
                f"µs in a batch of {batch}, and no batch takes it below {run.per_row_us:.0f}."
            )
        # The server's own Python for one request, alone and in a batch.
        lone = {name: cpu(stage, workload) for stage, name in _PER_REQUEST.items()}
        lone["the batching session"] = cpu("batching session, 1 request", workload)
        batched = {
            **lone,
            "the batching session": cpu(f"batching session, {batch} at once", workload)
            + cpu("metrics, batch", workload),
        }
        largest = max(lone, key=lambda stage: lone[stage])
        own = (
            "The server's own Python for a request (parsing, preparation, the batching "
            f"session, response encoding, metrics) costs {sum(lone.values()):.0f} µs of CPU "
            f"alone and {sum(batched.values()):.0f} µs a request in a batch of {batch}; alone, "
            f"the largest part is {largest} ({lone[largest]:.0f} µs), and the executor "
            f"hand-off alone costs {cpu('executor hand-off', workload):.0f}."
        )
        beyond = cpu(END_TO_END, workload)
        rest = beyond - single - sum(lone.values())
        end_to_end = (
            f"End to end, one outstanding, a Predict costs {beyond:.0f} µs of CPU more than a "
            f"GetModelStatus; less its session run ({single:.0f}) and that Python "
            f"({sum(lone.values()):.0f}), {rest:.0f} µs are in no row: one outstanding, the "
            "event loop goes idle while the model runs and is woken when it is done, and a "
            f"wake-up alone costs {cpu('event-loop wake-up', workload):.0f} µs of CPU here; and "
            "the larger messages pass through gRPC."
        )
        paragraphs.append(f"**{workload}**: {model} {own} {end_to_end}")
    return [
        "What limits it, in CPU time (what bounds throughput once requests saturate the cores):",
        "",
        *itertools.chain.from_iterable((paragraph, "") for paragraph in paragraphs),
    ][:-1]


def _cost(cost: Cost | None) -> str:
    """``—`` for a stage that is not on a workload's path."""
    return "—" if cost is None else f"{cost.cpu_us:.1f} / {cost.wall_us:.1f}"


# A metric's name in the targets tables, its unit and its decimals.
_METRIC_NAMES: dict[Metric, tuple[str, str, int]] = {
    "p50_ms": ("p50", "ms", 2),
    "p99_ms": ("p99", "ms", 2),
    "throughput": ("throughput", "req/s", 0),
    "cpu_ms_per_request": ("CPU per request", "ms", 3),
}


def _target_cells(row: Repeated, target: RatioTarget, decimals: int | None = None) -> str:
    """``of``'s median, ``to``'s, the ratio's median and range, the bound and the verdict."""
    decimals = _METRIC_NAMES[target.metric][2] if decimals is None else decimals
    spread = row.ratio(target.metric, target.of, target.to)
    return (
        f"{row.median(target.of, target.metric):.{decimals}f} "
        f"| {row.median(target.to, target.metric):.{decimals}f} | {spread.text()} "
        f"| {target.bound.text('x')} | {_met(target.bound.met_by(spread))} |"
    )


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
            name, unit, _ = _METRIC_NAMES[target.metric]
            lines.append(
                f"| {rpc} | {name} at {target.concurrency} outstanding, {unit} "
                f"| {_target_cells(row.measured, target)}"
            )
    return lines


def _ratio_targets(
    targets: Sequence[RatioTarget],
    at: Callable[[int], Repeated | None],
    throughput_unit: str = "req/s",
    throughput_decimals: int = 0,
) -> list[str]:
    """A section's targets, each with both sides' medians and the ratio's range."""
    lines = [
        "| target | A | B | A / B | bound | |",
        "|---|---|---|---|---|---|",
    ]
    for target in targets:
        row = at(target.concurrency)
        name, unit, decimals = _METRIC_NAMES[target.metric]
        if target.metric == "throughput":
            unit, decimals = throughput_unit, throughput_decimals
        label = f"{name}, A: {target.of}, B: {target.to}, {target.concurrency} outstanding, {unit}"
        if row is None or target.of not in row.repetitions or target.to not in row.repetitions:
            lines.append(f"| {label} | | | | {target.bound.text('x')} | {NOT_MEASURED} |")
        else:
            lines.append(f"| {label} | {_target_cells(row, target, decimals)}")
    return lines


def _batching_section(results: BatchingResults, alone: ModelAlone) -> list[str]:
    ceiling = results.at(CEILING_CONCURRENCY)
    lines = [
        "## Model server: dynamic batching off and on",
        "",
        "CNN `Predict` of one 28x28 image per request, with N requests outstanding, against two "
        "model server processes serving the same version: **off** has no batching; **on** has "
        "`--enable_batching` with `max_batch_size` 64, `batch_timeout_micros` 0 and one batch "
        "thread (benchmarks/stack.py says why). "
        f"At {CEILING_CONCURRENCY} outstanding a third side takes its turns with them, "
        "**ceiling**: `GetModelStatus` on the batching server, with the same client and cores, "
        "a call that carries no tensor and runs no model: the transport's own ceiling, which "
        "no batching can push a Predict past.",
        "",
        _alternation(results.alternation, (OFF, ON, CEILING))
        + f" (Below {CEILING_CONCURRENCY} outstanding: off and on alone.)",
        "",
        "| outstanding | off: req/s | off: p50 / p99 ms | on: req/s | on: p50 / p99 ms "
        "| throughput on/off | p50 on/off |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {row.concurrency} | {_rate(row, OFF)} | {_latency(row, OFF)} | {_rate(row, ON)} "
            f"| {_latency(row, ON)} | {row.ratio('throughput', ON, OFF).text()} "
            f"| {row.ratio('p50_ms', ON, OFF).text()} |"
            for row in results.rows
        ),
        "",
    ]
    if ceiling is not None and CEILING in ceiling.repetitions:
        lines += [
            f"The ceiling at {CEILING_CONCURRENCY} outstanding: {_rate(ceiling, CEILING)} req/s, "
            f"{_latency(ceiling, CEILING)} ms p50 / p99. Batched Predict over it: "
            f"{ceiling.ratio('throughput', ON, CEILING).text()} in throughput; without "
            f"batching: {ceiling.ratio('throughput', OFF, CEILING).text()}.",
            "",
        ]
    return [
        *lines,
        *_ratio_targets(BATCHING_TARGETS, results.at),
        "",
        "The old target, at least 3x the throughput with batching on as off at 32 outstanding, "
        "is retired. On a CPU server, a one-image request's own gRPC cost (receiving and parsing "
        "it, the server's loop, building and sending the reply: what the ceiling measures) "
        "dominates its model run, and batching cannot shorten it: batching merges model runs, "
        "so on/off is bounded by how small a share of a request the model run is, not by how "
        "well the batching works. The right bound is the transport's ceiling: a batched "
        "Predict close to a call that runs no model at all has taken the model run off each "
        "request's cost. On a GPU the model run becomes cheap per row and large batches "
        "amortise the kernel launches and the transfers, so batching matters much more there "
        "(`make bench-gpu`); but every request still pays its own gRPC cost, so the transport's "
        "ceiling still bounds it.",
        "",
        _model_alone(alone, results.at(1)),
        "",
    ]


def _model_alone(alone: ModelAlone, lone: Repeated | None) -> str:
    per_image = alone.batch_ms / alone.batch_size
    speedup = alone.single_ms / per_image
    off_1 = lone.median(OFF, "p50_ms") if lone is not None else math.nan
    return (
        f"What limits it: the CNN alone, run in-process without a server, takes "
        f"{alone.single_ms:.2f} ms for one image and {alone.batch_ms:.2f} ms for "
        f"{alone.batch_size} ({per_image:.2f} ms an image), so batching can make the model "
        f"itself at most {speedup:.1f}x faster. But a served request takes {off_1:.2f} ms at "
        f"one outstanding: most of it is the Python gRPC server's own work per request (and "
        f"the benchmark client shares the same cores), which batching does not shorten. The "
        f"rows at 8 and 32 are bounded by that per-request cost, not by the model."
    )


def _generation_section(results: GenerationResults, alone: ForecasterAlone) -> list[str]:
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
        _alternation(results.alternation, STRATEGIES),
        "",
        "| outstanding | "
        + " | ".join(f"{name}: forecasts/s | {name}: p50 / p99 ms" for name in STRATEGIES)
        + " | throughput step / window | throughput continuous / window "
        "| p50 continuous / step |",
        "|---|" + "---|---|" * len(STRATEGIES) + "---|---|---|",
    ]
    for row in results.rows:
        cells = " | ".join(f"{_rate(row, name, 1)} | {_latency(row, name)}" for name in STRATEGIES)
        lines.append(
            f"| {row.concurrency} | {cells} "
            f"| {row.ratio('throughput', 'step', 'window').text()} "
            f"| {row.ratio('throughput', 'continuous batching', 'window').text()} "
            f"| {row.ratio('p50_ms', 'continuous batching', 'step').text()} |"
        )
    lines += [
        "",
        *_ratio_targets(GENERATION_TARGETS, results.at, "forecasts/s", 1),
        "",
        f"What limits each. The model's own cost, run in-process: a window prediction takes "
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
        "each.",
    ]
    target = results.at(TARGET_CONCURRENCY)
    if target is not None:
        batched = target.median("continuous batching", "throughput")
        one_by_one = batched * alone.prime_ms / 1000
        together = batched * alone.batch_prime_ms / TARGET_CONCURRENCY / 1000
        lines.append(
            f"At {TARGET_CONCURRENCY} outstanding it finished {batched:.0f} forecasts/s, whose "
            f"primes would need {one_by_one:.2f} s of model-server CPU a second one by one, and "
            f"{together:.2f} s in calls of {TARGET_CONCURRENCY}, on this two-core machine, "
            "beside the gateway, the client and every step."
        )
        servers = "the gateway's and the model server's together"
        lines += _servers_cpu(
            target, STRATEGIES, "forecast", "forecasts/s", "continuous batching", servers
        )
    return [*lines, ""]


def _servers_cpu(
    row: Repeated, sides: Sequence[str], unit: str, rate: str, bound_side: str, servers: str
) -> list[str]:
    """A sentence on the CPU each side's ``servers`` spent per call, and the ceiling that puts
    on the bound side on two cores."""
    cpu = {side: row.median(side, "cpu_ms_per_request") for side in sides}
    if any(math.isnan(ms) for ms in cpu.values()):
        return []
    each = ", ".join(f"{side} {ms:.3f} ms" for side, ms in cpu.items())
    ceiling = 2000 / cpu[bound_side]
    return [
        f"The servers' CPU per {unit} at {row.concurrency} outstanding, read from /proc "
        f"({servers}): {each}. On two cores that alone caps {bound_side} at {ceiling:.0f} "
        f"{rate}, before the client's share; it "
        f"reached {row.median(bound_side, 'throughput'):.0f}."
    ]


def _similarity_section(result: SimilarityResult, quality: Word2VecQuality | None) -> list[str]:
    gensim = result.gensim
    lines = [
        "## Similar words",
        "",
        f"`SimilarWords` (k={K}) for the {result.vocabulary_size}-word, "
        f"{result.dimensions}-dimension vocabulary of the served word2vec version, asked by the "
        "same client two ways: through the **gateway** (two gRPC hops: the gateway, then the "
        "model server's in-graph top-k), and through the **gensim server** "
        "(`benchmarks/similarity_peer.py`), the peer a user would deploy instead: the same "
        "vectors in gensim's `KeyedVectors` behind a minimal grpc.aio server in a process of "
        "its own, one hop, answering the gateway's own `SimilarWords` messages with "
        "`most_similar`, run on its event loop (one lookup costs less than a hand-off to a "
        "thread). The queries cycle through the vocabulary's most frequent words.",
        "",
        _alternation(result.alternation, (GATEWAY, PEER))
        + " For context, gensim in-process with no server at all, one query after another.",
        "",
        "| | outstanding | queries/s | p50 / p99 ms | gateway / gensim server throughput "
        "| gateway / gensim server p50 |",
        "|---|---|---|---|---|---|",
        f"| gensim in-process | 1 | {gensim.throughput:.0f} | {gensim.p50_ms:.3f} / "
        f"{gensim.p99_ms:.3f} | | |",
    ]
    for row in result.rows:
        throughput = row.ratio("throughput", GATEWAY, PEER).text()
        p50 = row.ratio("p50_ms", GATEWAY, PEER).text()
        lines += [
            f"| {GATEWAY} | {row.concurrency} | {_rate(row, GATEWAY)} | {_latency(row, GATEWAY)} "
            f"| {throughput} | {p50} |",
            f"| {PEER} | {row.concurrency} | {_rate(row, PEER)} | {_latency(row, PEER)} | | |",
        ]
    lines += [
        "",
        *_ratio_targets(SIMILARITY_TARGETS, result.at),
        *_word2vec_quality(quality),
        "",
        "What limits it: both servers are Python gRPC servers in front of a numpy or TensorFlow "
        "lookup that is a small part of a query's time at this vocabulary size; the gateway's "
        "query crosses one more hop and one more Python server (the model server), and is "
        "validated and normalised on the way. gensim in-process has no network, serialisation "
        "or request validation at all. The service pays for isolation, versioning and sharing "
        "one copy of the vectors among many clients.",
    ]
    target = result.at(SIMILARITY_TARGETS[0].concurrency)
    if target is not None:
        servers = "through the gateway, the gateway's and the model server's together"
        lines += _servers_cpu(target, (GATEWAY, PEER), "query", "queries/s", GATEWAY, servers)
    return [*lines, ""]


def _word2vec_quality(quality: Word2VecQuality | None) -> list[str]:
    """WordSim-353 Spearman against gensim's, full profile, from the served version's metrics:
    one training run, one value, no range."""
    label = "word2vec WordSim-353 Spearman, A: ours, B: gensim Word2Vec, same corpus, full profile"
    bound = WORD2VEC_SPEARMAN.text("x")
    if quality is not None and quality.profile == "full":
        return [
            f"| {label} | {quality.spearman:.3f} | {quality.peer_spearman:.3f} "
            f"| {quality.ratio:.2f}x | {bound} | {_met(WORD2VEC_SPEARMAN.met(quality.ratio))} |",
            "",
            f"The Spearman row is training's own measurement (word2vec version {quality.version}'s "
            "`metrics.json`, both sets of vectors scored by gensim's `evaluate_word_pairs`): one "
            "run, so one value rather than a range; gensim's own score moves by about 0.01 from "
            "run to run.",
        ]
    row = f"| {label} | | | | {bound} | {NOT_MEASURED} |"
    if quality is None:
        return [row, "", "The served word2vec version has no readable `metrics.json`."]
    return [
        row,
        "",
        f"The served word2vec version ({quality.version}) was trained with the {quality.profile} "
        f"profile ({quality.corpus} corpus): Spearman {quality.spearman:.3f} against gensim's "
        f"{quality.peer_spearman:.3f} on the same corpus, {quality.ratio:.2f}x, shown for context "
        "and not judged, since the target is for the full profile (`make train`; "
        "training/README.md records its last run).",
    ]


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


def _rate(row: Repeated, side: str, decimals: int = 0) -> str:
    errors = row.errors(side)
    rate = f"{row.median(side, 'throughput'):.{decimals}f}"
    return rate + (f", {errors} errors" if errors else "")


def _latency(row: Repeated, side: str) -> str:
    return f"{row.median(side, 'p50_ms'):.2f} / {row.median(side, 'p99_ms'):.2f}"
