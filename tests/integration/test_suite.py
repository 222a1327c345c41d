"""`make run` end to end: the suite launcher starts both services as processes, the bundled
client classifies a wine, a newly published version is served, and SIGTERM stops everything."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from client_cli import run_client
from servers import republish
from suite_process import GATEWAY_LINE, SuiteProcess

from benchmarks.stack import free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")

START_TIMEOUT_S = 120.0


def http_text(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://localhost:{port}{path}", timeout=10) as response:
        return str(response.read().decode())


def http_json(port: int, path: str) -> Any:
    return json.loads(http_text(port, path))


async def test_suite_runs_serves_rollouts_and_stops(full_repository: Path) -> None:
    rest_port = free_port()
    suite = await SuiteProcess.start(
        full_repository,
        "--modelserver_port=0",
        f"--modelserver_rest_port={rest_port}",
        "--gateway_port=0",
        "--metrics_port=0",
        "--poll_s=0.2",
    )
    try:
        port = int((await suite.wait_for(GATEWAY_LINE, START_TIMEOUT_S)).group(1))
        wine_rows = ["classify", "--wine-row", "0", "--wine-row", "130"]
        code, output = await run_client(port, "--json", *wine_rows)
        assert code == 0, output
        answer = json.loads(output)
        assert [c["class_name"] for c in answer["classifications"]] == ["class_0", "class_2"]
        assert answer["model"] == {"name": "classifier", "version": "1"}
        # For people: the version once, then each row with its true class and the answer.
        code, output = await run_client(port, *wine_rows)
        assert code == 0, output
        lines = output.splitlines()
        assert lines[0] == "classifier version 1"
        assert re.match(r"wine row 0 \(true class class_0\):   class_0  [01]\.\d\d  \(", lines[1])
        assert re.match(r"wine row 130 \(true class class_2\): class_2  [01]\.\d\d  \(", lines[2])
        status = await asyncio.to_thread(http_json, rest_port, "/v1/models/classifier")
        assert status["model_version_status"][0]["state"] == "AVAILABLE"
        metrics = await asyncio.to_thread(http_text, rest_port, "/monitoring/prometheus/metrics")
        assert ':tensorflow:serving:request_count{model_name="classifier",status="OK"}' in metrics

        assert republish(full_repository / "classifier", 1) == 2
        for _ in range(100):
            code, output = await run_client(port, "--json", "list-models")
            models = json.loads(output)["models"] if code == 0 else []
            if any(m["name"] == "classifier" and m["serving_version"] == "2" for m in models):
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"version 2 was not served: {output}")

        code, output = await run_client(port, "classify", "--values", "1,2,3")
        assert code == 1
        assert "INVALID_ARGUMENT: samples[0].ordered.values: expected 13 values" in output
    finally:
        exit_code = await suite.stop()
    assert exit_code == 0, suite.output
    assert "suite stopped" in suite.output
