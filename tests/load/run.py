"""`make loadtest`: a bounded, headless Locust run against the gateway, with its reports.

    python tests/load/run.py [--host localhost:50051] [--users 8] [--spawn-rate 4]
        [--run-time 60s] [--max-p95-ms 0] [--reports-dir reports] [-- <more locust options>]

Starts the local suite (`python -m services.suite`) first when nothing serves at a local host,
and stops it afterwards. Writes reports/loadtest_*.csv and reports/loadtest.html, and exits with
Locust's verdict: non-zero when any call failed or the 95th percentile passed --max-p95-ms.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import grpc

from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.suite.children import Child

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
MODELS = {"classifier", "cnn", "forecaster", "word2vec", "autoencoder"}
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
# The first start of the suite trains every missing model (quick profile): minutes.
SUITE_START_TIMEOUT_S = 900


def main(argv: Sequence[str] | None = None) -> int:
    options, locust_options = _parser().parse_known_args(argv)
    suite = None
    if not serves_every_model(options.host, timeout_s=5):
        if not options.host.startswith(LOCAL_HOSTS):
            print(f"nothing serves all five models at {options.host}", file=sys.stderr)
            return 2
        print(f"starting the local suite for {options.host}", flush=True)
        suite = Child("suite", "services.suite", [])
        if not _wait_until_serving(options.host, suite):
            suite.stop(timeout_s=30)
            print("the local suite did not start", file=sys.stderr)
            return 2
    try:
        return run_locust(options, [arg for arg in locust_options if arg != "--"])
    finally:
        if suite is not None:
            suite.stop(timeout_s=30)


def run_locust(options: argparse.Namespace, extra: Sequence[str]) -> int:
    options.reports_dir.mkdir(parents=True, exist_ok=True)
    prefix = options.reports_dir / "loadtest"
    command = [
        sys.executable, "-m", "locust",
        "-f", str(LOCUSTFILE),
        "--headless",
        "--host", options.host,
        "--users", str(options.users),
        "--spawn-rate", str(options.spawn_rate),
        "--run-time", options.run_time,
        "--stop-timeout", "15",
        "--max-p95-ms", str(options.max_p95_ms),
        "--csv", str(prefix),
        "--html", f"{prefix}.html",
        "--only-summary",
        *extra,
    ]  # fmt: skip
    code = subprocess.run(command, check=False).returncode
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


def _wait_until_serving(host: str, suite: Child) -> bool:
    deadline = time.monotonic() + SUITE_START_TIMEOUT_S
    while time.monotonic() < deadline and suite.exit_code() is None:
        if serves_every_model(host, timeout_s=5):
            return True
        time.sleep(1)
    return False


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python tests/load/run.py", description=__doc__)
    parser.add_argument("--host", default="localhost:50051", help="the gateway, host:port")
    parser.add_argument("--users", type=int, default=8, help="concurrent users")
    parser.add_argument("--spawn-rate", type=float, default=4, help="users started per second")
    parser.add_argument("--run-time", default="60s", help="how long to run: 20s, 5m, ...")
    parser.add_argument(
        "--max-p95-ms", type=float, default=0, help="fail above this p95 latency; 0: no limit"
    )
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"))
    return parser


if __name__ == "__main__":
    sys.exit(main())
