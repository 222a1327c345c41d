"""The model server's per-stage section of BENCHMARKS.md: every row, the round trips beside it,
and the paragraph on what limits it, rendered from the numbers."""

from __future__ import annotations

import pytest

from benchmarks.modelserver_stages import (
    END_TO_END,
    STAGES,
    WORKLOADS,
    Cost,
    ModelServerStagesResults,
    SessionRunModel,
    StageRow,
)
from benchmarks.report import _modelserver_stages_section

# Per request (µs of CPU): a session run of 1000 + 100 a row, as the rows would show it.
SESSION_RUNS = {1: 1100.0, 8: 1000 / 8 + 100, 32: 1000 / 32 + 100}


def _results() -> ModelServerStagesResults:
    rows = []
    for index, stage in enumerate(STAGES):
        cpu = float(index + 1)
        if stage.startswith("session run, batch of "):
            cpu = SESSION_RUNS[int(stage.rsplit(" ", 1)[1])]
        elif stage == END_TO_END:
            cpu = 2000.0
        rows.append(StageRow(stage, {w: Cost(cpu, cpu + 0.5) for w in WORKLOADS}))
    predict = {w: Cost(2500, 2600) for w in WORKLOADS}
    status = {w: Cost(500, 520) for w in WORKLOADS}
    return ModelServerStagesResults(5, 0.2, 2000, 300, rows, predict, status)


def test_the_session_run_splits_into_a_fixed_cost_and_one_per_row() -> None:
    model = SessionRunModel.of(_results(), WORKLOADS[0], "cpu")

    assert model is not None
    assert model.fixed_us == pytest.approx(1000)
    assert model.per_row_us == pytest.approx(100)


def test_the_report_renders_every_stage_row_for_both_workloads() -> None:
    results = _results()
    text = "\n".join(_modelserver_stages_section(results))

    assert text.startswith("## Model server per-stage costs (batched Predict)")
    assert (
        "| stage | what is timed | requests a call | cnn: CPU / wall µs a request "
        "| word2vec similar: CPU / wall µs a request |" in text
    )
    for row in results.rows:
        what, share = STAGES[row.stage]
        cost = row.costs[WORKLOADS[0]]
        cell = f"{cost.cpu_us:.1f} / {cost.wall_us:.1f}"
        assert f"| {row.stage} | {what} | {share} | {cell} | {cell} |" in text
    assert "cnn: Predict 2500.0 / 2600.0, GetModelStatus 500.0 / 520.0" in text
    assert "a timed loop sized to about 0.2 s (at most 2000 calls), 5 repetitions" in text
    assert "300 calls a repetition" in text


def test_what_limits_it_is_rendered_from_the_numbers() -> None:
    results = _results()
    text = "\n".join(_modelserver_stages_section(results))
    cpu = {row.stage: row.costs[WORKLOADS[0]].cpu_us for row in results.rows}
    alone = sum(
        cpu[stage]
        for stage in (
            "request parsing",
            "preparation",
            "response encoding",
            "metrics, request",
            "batching session, 1 request",
        )
    )

    assert "What limits it" in text
    for workload in WORKLOADS:
        assert f"**{workload}**: A session run costs about 1000 µs of CPU" in text
    assert "plus 100 µs a row" in text
    assert "1100 µs alone, 225 µs in a batch of 8, and no batch takes it below 100" in text
    assert f"costs {alone:.0f} µs of CPU alone" in text
    assert f"the largest part is the request's metrics ({cpu['metrics, request']:.0f} µs)" in text
    assert "a Predict costs 2000 µs of CPU more than a GetModelStatus" in text
    assert f"{2000 - 1100 - alone:.0f} µs are in no row" in text
    assert f"a wake-up alone costs {cpu['event-loop wake-up']:.0f} µs of CPU" in text
