"""The parts that install without TensorFlow (the gateway, the client and the load test's
workload) load none of it: each runs as a process of its own under `python -X importtime`, whose
report on stderr names every module it imported. The test environment has TensorFlow
installed, so one stray import anywhere shows here, before an image without it would fail."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# `import time:      self [us] |  cumulative | imported package`, nested by indentation.
IMPORT_LINE = re.compile(r"import time:\s+\d+ \|\s+\d+ \|( *)(\S+)")
PORT_LINE = re.compile(r"Gateway listening on port (\d+)")
START_TIMEOUT_S = 120


def tensorflow_imports(report: str) -> list[str]:
    """Where the report shows TensorFlow (`tensorflow`, `tensorflow.*`, `tensorflow_serving*`)
    coming in, each once: the module of TensorFlow's (or of keras, which imports it) that
    something else imported, with the chain of imports that led to it, as in
    "tensorflow.core.protobuf <- services.gateway.backend <- services.gateway.server"."""
    matches = [IMPORT_LINE.match(line) for line in report.splitlines()]
    lines = [(len(m.group(1)), m.group(2)) for m in matches if m]
    assert lines, "no -X importtime report on stderr"
    entries: dict[str, None] = {}
    for index, (depth, module) in enumerate(lines):
        if not _is_tensorflow(module):
            continue
        chain = [module]
        # A module is reported after those it imported, one level deeper than its importer.
        for later_depth, importer in lines[index + 1 :]:
            if later_depth < depth:
                chain.append(importer)
                depth = later_depth
        outside = [i for i, name in enumerate(chain) if not _is_tensorflow(name, family=True)]
        entries[" <- ".join(chain[outside[0] - 1 :] if outside else chain[-1:])] = None
    return list(entries)


def _is_tensorflow(module: str, family: bool = False) -> bool:
    pattern = r"tensorflow(\..+)?|tensorflow_serving.*"
    if family:
        pattern += r"|(keras|tf_keras|tensorboard|tensorboard_data_server)(\..+)?"
    return re.fullmatch(pattern, module) is not None


def assert_no_tensorflow(report: str, what: str) -> None:
    found = tensorflow_imports(report)
    assert not found, f"{what} imported TensorFlow:\n" + "\n".join(found)


def imported(report: str) -> set[str]:
    return {m.group(2) for m in map(IMPORT_LINE.match, report.splitlines()) if m}


def run_with_importtime(args: Sequence[str], cwd: Path = REPO) -> tuple[int, str, str]:
    """`python -X importtime <args>` to its end: exit code, stdout and the stderr report."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        cwd=cwd,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
    )
    return result.returncode, result.stdout, result.stderr


def test_the_gateway_process_imports_no_tensorflow() -> None:
    # No model server is needed: the gateway starts without one and answers health NOT_SERVING.
    with socket.socket() as unused:
        unused.bind(("localhost", 0))
        model_server_port = unused.getsockname()[1]
    # The report goes to a file: TensorFlow's runs to megabytes, more than a pipe holds.
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-X",
                "importtime",
                "-m",
                "services.gateway",
                "--port=0",
                "--metrics_port=0",
                f"--model_server=localhost:{model_server_port}",
                "--shutdown_grace_s=0",
            ],
            cwd=REPO,
            env=_environment(),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            listening = _wait_for_port_line(process)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        stderr.seek(0)
        report = stderr.read()
    exited = f"the gateway exited with {process.returncode} before it listened:\n"
    assert listening, exited + report[-3000:]
    # By now it has imported all it serves with: its server and every model's code.
    assert "services.gateway.server" in imported(report)
    assert_no_tensorflow(report, "python -m services.gateway")


def test_the_client_imports_no_tensorflow() -> None:
    # Each command builds its request in full, reading the data sets it sends, before it
    # fails to reach a gateway that is not there.
    with socket.socket() as unused:
        unused.bind(("localhost", 0))
        target = f"localhost:{unused.getsockname()[1]}"
    for command in (
        ["--help"],
        ["classify", "--wine-row", "0"],
        ["forecast", "--airpassengers", "--horizon", "3"],
        ["list-models"],
    ):
        args = ["-m", "services.client", f"--target={target}", "--timeout=10", *command]
        code, _, report = run_with_importtime(args)
        assert code == (0 if command == ["--help"] else 1), report[-3000:]
        if command != ["--help"]:
            assert "UNAVAILABLE" in report, report[-3000:]
        assert_no_tensorflow(report, f"python -m services.client {' '.join(command)}")


def test_the_load_tests_workload_imports_no_tensorflow() -> None:
    # Every request the load test sends, built from every data set it reads.
    script = (
        "from workload import DEFAULT_WEIGHTS, Workload, load_data, word_pools\n"
        "load_data()\n"
        "workload = Workload(word_pools(), seed=0)\n"
        "names = [name for name in DEFAULT_WEIGHTS if hasattr(workload, name)]\n"
        "assert len(names) >= 7, names\n"
        "for name in names:\n"
        "    getattr(workload, name)()\n"
    )
    code, _, report = run_with_importtime(["-c", script], cwd=REPO / "tests" / "load")
    assert code == 0, report[-3000:]
    assert {"workload", "training.mnist", "training.series", "training.corpora"} <= imported(report)
    assert_no_tensorflow(report, "tests/load/workload.py")


def _environment() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _wait_for_port_line(process: subprocess.Popen[str]) -> bool:
    """Whether the process reported its port within the timeout (False: it exited first)."""
    assert process.stdout is not None
    stdout = process.stdout
    listening, done = threading.Event(), threading.Event()

    def read() -> None:
        for line in stdout:
            if PORT_LINE.search(line):
                listening.set()
                done.set()
        done.set()  # its output ended: it has exited

    threading.Thread(target=read, daemon=True).start()
    done.wait(START_TIMEOUT_S)
    return listening.is_set()
