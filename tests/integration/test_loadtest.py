"""The Locust harness, run headless against a real stack: every RPC, no failures and no
NOT_FOUND in the gateway's counts, and a p95 limit that fails the run when passed; the same as a
Locust master and worker processes, all of them stopped however the run ends; and no local suite
started for a host elsewhere."""

from __future__ import annotations

import asyncio
import csv
import os
import re
import signal
import sys
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
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


CLASSIFY_ONLY = (
    "--task-weights=classify=1,recognize_digits=0,forecast=0,stream_forecast=0,"
    "similar_words=0,encode=0,list_models=0,get_model=0"
)
MASTER_PORT_LINE = re.compile(r"a Locust master on 127\.0\.0\.1:(\d+) and (\d+) workers")


async def start_load_test(host: str, reports: Path, *options: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(RUN_PY),
        f"--host={host}",
        f"--reports-dir={reports}",
        *options,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def run_load_test(stack: Stack, reports: Path, *options: str) -> tuple[int, str]:
    """Runs `make loadtest`'s script against the stack; the servers keep answering in this
    event loop while it runs."""
    host = f"localhost:{stack.gateway.port}"
    process = await start_load_test(host, reports, *options)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=240)
    assert process.returncode is not None
    return process.returncode, output.decode()


def stats_by_name(reports: Path) -> dict[str, dict[str, str]]:
    with (reports / "loadtest_stats.csv").open() as stats:
        return {row["Name"]: row for row in csv.DictReader(stats)}


async def gateway_requests(stack: Stack) -> dict[str, float]:
    """The gateway's answered calls by status code, from its Prometheus endpoint."""
    url = f"http://localhost:{stack.gateway.metrics_port}/metrics"

    def scrape() -> str:
        with urllib.request.urlopen(url, timeout=10) as page:
            return str(page.read().decode())

    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(await asyncio.to_thread(scrape)):
        for sample in family.samples:
            if sample.name == "gateway_requests_total":
                code = sample.labels["code"]
                counts[code] = counts.get(code, 0.0) + sample.value
    return counts


def grown(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """By status code, the calls answered between two readings, where there were any."""
    return {code: n - before.get(code, 0) for code, n in after.items() if n != before.get(code, 0)}


def locust_processes(master_port: int) -> list[str]:
    """The command lines of the processes of the Locust master on that port and its workers."""
    flags = (f"--master-bind-port={master_port}", f"--master-port={master_port}")
    found = []
    for proc in Path("/proc").iterdir():
        try:
            arguments = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue  # gone, or not a process
        if any(flag in arguments for flag in flags):
            found.append(" ".join(arguments))
    return found


async def test_a_short_load_test_calls_every_rpc_without_a_failure(
    stack: Stack, tmp_path: Path
) -> None:
    before = await gateway_requests(stack)
    code, output = await run_load_test(
        stack, tmp_path, "--users=4", "--spawn-rate=4", "--run-time=10s"
    )
    assert code == 0, output
    # Not even one NOT_FOUND to learn which words the model has: the word pools need no asking.
    answered = grown(before, await gateway_requests(stack))
    assert set(answered) == {"OK"}, answered
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


async def test_a_distributed_run_has_a_master_and_workers_and_the_masters_verdict(
    stack: Stack, tmp_path: Path
) -> None:
    before = await gateway_requests(stack)
    code, output = await run_load_test(
        stack, tmp_path, "--workers=2", "--users=2", "--spawn-rate=2", "--run-time=5s"
    )
    assert code == 0, output
    assert MASTER_PORT_LINE.search(output), output
    assert "2 workers connected" in output, output
    assert "load test passed" in output
    stats = stats_by_name(tmp_path)
    counted = int(stats["Aggregated"]["Request Count"])
    assert counted > 0 and int(stats["Aggregated"]["Failure Count"]) == 0, output
    answered = grown(before, await gateway_requests(stack))
    assert set(answered) == {"OK"}, answered
    # The master's verdict covers its workers' calls: all but those in flight at the end (at
    # most one per user), beside run.py's one ListModels to see that the gateway serves.
    assert counted <= answered["OK"] - 1 <= counted + 2, (counted, answered, output)


async def test_a_distributed_run_exits_with_the_masters_verdict(
    stack: Stack, tmp_path: Path
) -> None:
    """Workers judge nothing and exit 0; a failed run exits 1 all the same."""
    code, output = await run_load_test(
        stack,
        tmp_path,
        "--workers=2",
        "--users=2",
        "--spawn-rate=2",
        "--run-time=5s",
        "--max-p95-ms=0.001",
        "--",
        CLASSIFY_ONLY,
    )
    assert code == 1, output
    assert "is above --max-p95-ms" in output
    assert int(stats_by_name(tmp_path)["Classify"]["Request Count"]) > 0


async def test_a_stopped_distributed_run_stops_its_master_and_workers(
    stack: Stack, tmp_path: Path
) -> None:
    process = await start_load_test(
        f"localhost:{stack.gateway.port}",
        tmp_path,
        "--workers=2",
        "--users=2",
        "--spawn-rate=2",
        "--run-time=5m",
        "--",
        CLASSIFY_ONLY,
    )
    stdout = process.stdout
    assert stdout is not None
    lines: list[str] = []

    async def until_users_run() -> int:
        port = 0
        while line := (await stdout.readline()).decode():
            lines.append(line)
            if match := MASTER_PORT_LINE.search(line):
                port = int(match.group(1))
            if "All users spawned" in line and port:
                return port
        raise AssertionError("the run ended before its users ran:\n" + "".join(lines))

    master_port = await asyncio.wait_for(until_users_run(), timeout=180)
    assert len(locust_processes(master_port)) == 3, "".join(lines)
    os.kill(process.pid, signal.SIGTERM)
    rest, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    output = "".join(lines) + rest.decode()
    assert process.returncode == 128 + signal.SIGTERM, output
    assert locust_processes(master_port) == [], output
    assert (tmp_path / "loadtest_stats.csv").exists()  # the master wrote its reports


async def test_a_host_elsewhere_that_serves_nothing_starts_no_suite(tmp_path: Path) -> None:
    process = await start_load_test("nothing-serves.invalid:50051", tmp_path)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2, output
    assert "nothing serves all five models at nothing-serves.invalid:50051" in output.decode()
    assert "starting the local suite" not in output.decode()
