"""The Locust harness, run headless against a real stack: every RPC, no failures, and a p95
limit that fails the run when passed."""

from __future__ import annotations

import asyncio
import csv
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from servers import Stack, start_stack

pytestmark = pytest.mark.asyncio(loop_scope="session")

RUN_PY = Path(__file__).resolve().parents[1] / "load" / "run.py"
RPCS = {
    "Classify",
    "RecognizeDigits",
    "Forecast",
    "StreamForecast",
    "SimilarWords",
    "Encode",
    "ListModels",
    "GetModel",
}
BATCHING = "max_batch_size { value: 64 }\nbatch_timeout_micros { value: 0 }\n"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(
    full_models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """All five models behind a gateway, with batching on, as deployed."""
    parameters = tmp_path_factory.mktemp("loadtest") / "batching.config"
    parameters.write_text(BATCHING)
    stack = await start_stack(
        full_models_dir, enable_batching=True, batching_parameters_file=str(parameters)
    )
    yield stack
    await stack.close()


async def run_load_test(stack: Stack, reports: Path, *options: str) -> tuple[int, str]:
    """Runs `make loadtest`'s script against the stack; the servers keep answering in this
    event loop while it runs."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(RUN_PY),
        f"--host=localhost:{stack.gateway.port}",
        f"--reports-dir={reports}",
        *options,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=240)
    assert process.returncode is not None
    return process.returncode, output.decode()


def stats_by_name(reports: Path) -> dict[str, dict[str, str]]:
    with (reports / "loadtest_stats.csv").open() as stats:
        return {row["Name"]: row for row in csv.DictReader(stats)}


async def test_a_short_load_test_calls_every_rpc_without_a_failure(
    stack: Stack, tmp_path: Path
) -> None:
    code, output = await run_load_test(
        stack, tmp_path, "--users=4", "--spawn-rate=4", "--run-time=20s"
    )
    assert code == 0, output
    stats = stats_by_name(tmp_path)
    for rpc in RPCS:
        assert int(stats[rpc]["Request Count"]) > 0, f"{rpc} was never called:\n{output}"
        assert int(stats[rpc]["Failure Count"]) == 0, output
    assert int(stats["Aggregated"]["Failure Count"]) == 0
    assert (tmp_path / "loadtest.html").stat().st_size > 0
    assert "load test passed" in output


async def test_a_run_over_its_p95_limit_fails(stack: Stack, tmp_path: Path) -> None:
    code, output = await run_load_test(
        stack,
        tmp_path,
        "--users=2",
        "--spawn-rate=2",
        "--run-time=6s",
        "--max-p95-ms=0.001",
        "--",
        "--task-weights=classify=1,recognize_digits=0,forecast=0,stream_forecast=0,"
        "similar_words=0,encode=0,list_models=0,get_model=0",
    )
    assert code == 1, output
    assert "is above --max-p95-ms" in output
    stats = stats_by_name(tmp_path)
    assert int(stats["Classify"]["Request Count"]) > 0
    assert "Encode" not in stats  # a weight of 0 leaves an RPC out
