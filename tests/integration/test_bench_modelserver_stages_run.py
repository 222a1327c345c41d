"""The model server's per-stage benchmark on the trained quick CNN and word2vec: every stage
of both workloads is measured and costs something, and its in-process model server goes away."""

from __future__ import annotations

import pytest
from session_training import SessionTraining

from benchmarks.modelserver_stages import END_TO_END, STAGES, WORKLOADS, run
from training.contracts import cnn, word2vec

pytestmark = pytest.mark.integration


async def test_every_stage_of_both_workloads_costs_something(
    session_training: SessionTraining,
) -> None:
    for model in (cnn.MODEL_NAME, word2vec.MODEL_NAME):
        session_training.version_dir(model)
    results = await run(
        session_training.models_dir, repetitions=1, loop_s=0.001, calls=3, round_trips=5
    )

    assert [row.stage for row in results.rows] == list(STAGES)
    for row in results.rows:
        assert set(row.costs) == set(WORKLOADS), row.stage
        for workload, cost in row.costs.items():
            assert cost.cpu_us > 0, (row.stage, workload, cost)
            # A difference of two loops' wall times may be anything on a busy machine.
            assert cost.wall_us > 0 or row.stage == END_TO_END, (row.stage, workload, cost)
    for round_trips in (results.predict_round_trip, results.status_round_trip):
        assert set(round_trips) == set(WORKLOADS)
        assert all(cost.cpu_us > 0 and cost.wall_us > 0 for cost in round_trips.values())
