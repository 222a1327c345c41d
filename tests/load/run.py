"""`make loadtest`: a bounded, headless Locust run against the gateway, with its reports.

    python tests/load/run.py [--host localhost:50051] [--workers 0] [--users 8]
        [--spawn-rate 4] [--run-time 60s] [--max-p95-ms 0] [--reports-dir reports]
        [-- <more locust options>]

Starts the local suite (`python -m services.suite`, its gateway on the host's port) first when
nothing serves at a local host, and stops it afterwards; a host elsewhere that serves nothing is
an error (exit code 2). With --workers N, Locust runs distributed as k8s/loadtest runs it in a
cluster: a headless master (`--master --expect-workers N`, on a free localhost port) and N
`--worker` processes running the users; the options after `--` go to all of them. Writes
reports/loadtest_*.csv and reports/loadtest.html, stops every process it started, whatever
happens, and exits with Locust's verdict (the master's, when distributed): non-zero when any
call failed or the 95th percentile passed --max-p95-ms.
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import grpc

from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.suite.children import Child
from training.contracts import autoencoder, classifier, cnn, forecaster, word2vec

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
MODELS = {
    classifier.MODEL_NAME,
    cnn.MODEL_NAME,
    forecaster.MODEL_NAME,
    word2vec.MODEL_NAME,
    autoencoder.MODEL_NAME,
}
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
# The first start of the suite trains every missing model (quick profile): minutes.
SUITE_START_TIMEOUT_S = 900
# How long the master waits for its workers to connect (each imports the data sets first).
WORKERS_CONNECT_TIMEOUT_S = 120
# A Locust process writes its reports and quits on SIGTERM; after this it is killed.
LOCUST_STOP_TIMEOUT_S = 30
# A worker quits when its master tells it to, once its users have stopped (--stop-timeout).
WORKER_QUIT_TIMEOUT_S = 20


class Interrupted(Exception):
    """SIGTERM or Ctrl-C (SIGINT): the run stops, and with it every process it started."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def main(argv: Sequence[str] | None = None) -> int:
    options, locust_options = _parser().parse_known_args(argv)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    suite = None
    try:
        if not serves_every_model(options.host, timeout_s=5):
            if not is_local(options.host):
                print(f"nothing serves all five models at {options.host}", file=sys.stderr)
                return 2
            print(f"starting the local suite for {options.host}", flush=True)
            suite = Child("suite", "services.suite", _suite_flags(options.host))
            if not _wait_until_serving(options.host, suite):
                print("the local suite did not start", file=sys.stderr)
                return 2
        return run_locust(options, [arg for arg in locust_options if arg != "--"])
    except Interrupted as interrupted:
        return interrupted.code
    finally:
        if suite is not None:
            suite.stop(timeout_s=30)


def run_locust(options: argparse.Namespace, extra: Sequence[str]) -> int:
    """Runs Locust, alone or as a master and workers, until the master's verdict."""
    options.reports_dir.mkdir(parents=True, exist_ok=True)
    prefix = options.reports_dir / "loadtest"
    locust = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", options.host]
    run = [
        "--headless",
        "--users", str(options.users),
        "--spawn-rate", str(options.spawn_rate),
        "--run-time", options.run_time,
        "--stop-timeout", "15",
        "--max-p95-ms", str(options.max_p95_ms),
        "--csv", str(prefix),
        "--html", f"{prefix}.html",
        "--only-summary",
    ]  # fmt: skip
    processes: list[subprocess.Popen[bytes]] = []
    try:
        if options.workers == 0:
            processes.append(_start([*locust, *run, *extra]))
        else:
            port = _free_port()
            master = [
                "--master",
                "--master-bind-host=127.0.0.1",
                f"--master-bind-port={port}",
                f"--expect-workers={options.workers}",
                f"--expect-workers-max-wait={WORKERS_CONNECT_TIMEOUT_S}",
            ]
            worker = ["--worker", "--master-host=127.0.0.1", f"--master-port={port}"]
            processes.append(_start([*locust, *master, *run, *extra]))
            processes.extend(_start([*locust, *worker, *extra]) for _ in range(options.workers))
            print(f"a Locust master on 127.0.0.1:{port} and {options.workers} workers", flush=True)
        code = processes[0].wait()
    finally:
        # The master first: on SIGTERM it stops its workers' users, writes its reports and
        # tells the workers to quit; a worker that has not quit soon after is stopped too.
        for index, process in enumerate(processes):
            _stop(process, grace_s=WORKER_QUIT_TIMEOUT_S if index else 0)
    print(f"reports: {prefix}_stats.csv, {prefix}.html")
    return code


def serves_every_model(host: str, timeout_s: float) -> bool:
    """Whether the gateway at host answers ListModels with a serving version of all five."""
    try:
        with grpc.insecure_channel(host) as channel:
            stub = gateway_pb2_grpc.GatewayServiceStub(channel)
            response = stub.ListModels(
                gateway_pb2.ListModelsRequest(), timeout=timeout_s, wait_for_ready=True
            )
    except grpc.RpcError:
        return False
    serving = {model.name for model in response.models if model.serving_version > 0}
    return serving >= MODELS


def is_local(host: str) -> bool:
    """Whether host:port names a port of this machine: the only place the local suite may be
    started, on that port."""
    name, _, port = host.rpartition(":")
    return port.isdigit() and name in LOCAL_HOSTS


def _suite_flags(host: str) -> list[str]:
    """The suite's gateway on the host's port (its other ports are `make run`'s)."""
    return [f"--gateway_port={host.rpartition(':')[2]}"]


def _wait_until_serving(host: str, suite: Child) -> bool:
    deadline = time.monotonic() + SUITE_START_TIMEOUT_S
    while time.monotonic() < deadline and suite.exit_code() is None:
        if serves_every_model(host, timeout_s=5):
            return True
        time.sleep(1)
    return False


def _start(command: Sequence[str]) -> subprocess.Popen[bytes]:
    # A process group of its own, and no terminal input: Ctrl-C reaches only this script, which
    # stops the Locust processes in order instead of all of them at once.
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, process_group=0)


def _stop(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """Waits grace_s for the process to end, then SIGTERM, then SIGKILL if it takes too long."""
    try:
        process.wait(grace_s)
        return
    except subprocess.TimeoutExpired:
        process.terminate()
    try:
        process.wait(LOCUST_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    # Once: a second Ctrl-C must not cut short the stopping of what was started.
    for other in (signal.SIGINT, signal.SIGTERM):
        signal.signal(other, signal.SIG_IGN)
    raise Interrupted(128 + signum)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python tests/load/run.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="localhost:50051", help="the gateway, host:port")
    parser.add_argument(
        "--workers",
        type=_non_negative,
        default=0,
        help="Locust worker processes under a master; 0: one process runs everything",
    )
    parser.add_argument("--users", type=int, default=8, help="concurrent users")
    parser.add_argument("--spawn-rate", type=float, default=4, help="users started per second")
    parser.add_argument("--run-time", default="60s", help="how long to run: 20s, 5m, ...")
    parser.add_argument(
        "--max-p95-ms", type=float, default=0, help="fail above this p95 latency; 0: no limit"
    )
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"))
    return parser


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more; got {value}")
    return value


if __name__ == "__main__":
    sys.exit(main())
