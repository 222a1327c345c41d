"""`make run` supervises its children: one that dies is started again on its port, with the
suite saying so, while the other keeps running, and the suite still stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
from client_cli import run_client
from suite_process import GATEWAY_LINE, SuiteProcess

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Five models load at each start of the model server: minutes on a busy 2-core machine.
START_TIMEOUT_S = 240.0
MODEL_SERVER = "services.modelserver"
GATEWAY = "services.gateway"


def children(suite: SuiteProcess) -> dict[str, int]:
    """The suite's running child processes, by the module they run (from /proc, not from what
    the suite prints)."""
    found: dict[str, int] = {}
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        try:
            # After "(comm)": the state, then the parent's process id.
            state, parent = (process / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            arguments = (process / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            continue  # not a process, or one that has just ended
        if int(parent) == suite.process.pid and state != "Z" and b"-m" in arguments:
            found[arguments[arguments.index(b"-m") + 1].decode()] = int(process.name)
    return found


async def until_it_classifies(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code, output = await run_client(port, "classify", "--wine-row", "0")
        if code == 0:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"the gateway on port {port} did not classify in {timeout_s} s: {output}")


async def test_a_killed_child_is_restarted_on_its_port_while_the_other_keeps_running(
    full_repository: Path,
) -> None:
    suite = await SuiteProcess.start(
        full_repository,
        "--modelserver_port=0",
        "--modelserver_rest_port=0",
        "--gateway_port=0",
        "--metrics_port=0",
        "--poll_s=0.2",
    )
    try:
        port = int((await suite.wait_for(GATEWAY_LINE, START_TIMEOUT_S)).group(1))
        first = children(suite)
        model_server, gateway = first[MODEL_SERVER], first[GATEWAY]

        # The gateway crashes: it comes back on its port, in front of the same model server.
        mark = len(suite.lines)
        killed = time.monotonic()
        os.kill(gateway, signal.SIGKILL)
        await suite.wait_for(r"^gateway exited with signal SIGKILL; restarting in 1 s$", 30, mark)
        await until_it_classifies(port, 60)
        print(f"gateway killed: classifying again after {time.monotonic() - killed:.1f} s")
        second = children(suite)
        assert second[MODEL_SERVER] == model_server
        restarted_gateway = second[GATEWAY]
        assert restarted_gateway != gateway

        # The model server crashes: it comes back on its port, behind the same gateway, which
        # answers again once it is back.
        mark = len(suite.lines)
        killed = time.monotonic()
        os.kill(model_server, signal.SIGKILL)
        await suite.wait_for(
            r"^model server exited with signal SIGKILL; restarting in 1 s$", 30, mark
        )
        await until_it_classifies(port, START_TIMEOUT_S)
        print(f"model server killed: classifying again after {time.monotonic() - killed:.1f} s")
        third = children(suite)
        assert third[GATEWAY] == restarted_gateway
        assert third[MODEL_SERVER] != model_server
        assert suite.process.returncode is None, suite.output  # the suite itself kept running
    finally:
        exit_code = await suite.stop()
    assert exit_code == 0, suite.output
    assert "suite stopped" in suite.output
