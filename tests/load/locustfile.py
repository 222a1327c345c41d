"""Locust load test of the gateway: gRPC users calling every RPC with realistic inputs.

    locust -f tests/load/locustfile.py --host localhost:50051
    make loadtest USERS=8 SPAWN_RATE=4 RUN_TIME=60s MAX_P95_MS=500

gRPC runs under gevent, as in Locust's own gRPC example, and every call, streams included, is
reported through `events.request` under its RPC name, failures with their status code. Each call
has a deadline. The run fails (exit code 1) when any call failed or when the 95th percentile
passes `--max-p95-ms`.

SimilarWords is asked only about words that every word2vec profile knows by construction
(workload.py, `word_pools.json`), so the test makes no call just to learn which words the model
has, and adds no NOT_FOUND to the gateway's error counts.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

import grpc
import grpc.experimental.gevent as grpc_gevent

grpc_gevent.init_gevent()  # before any channel exists: gRPC must yield to gevent

import gevent  # noqa: E402
from locust import User, events  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.runners import WorkerRunner  # noqa: E402
from workload import DEFAULT_WEIGHTS, Workload, load_data, parse_weights, word_pools  # noqa: E402

from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc  # noqa: E402


def _runs_users() -> bool:
    """Whether this process runs users, that is, is no Locust master, as its command line and
    Locust's environment variable say before Locust has parsed them. (A master set in a Locust
    config file reads the data sets it does not need: a few hundred MB for a moment.)"""
    master = os.environ.get("LOCUST_MODE_MASTER", "").lower() in ("1", "true", "yes")
    return not master and "--master" not in sys.argv


# The data sets are read now, before Locust creates its runner. A worker reports ready to its
# master as soon as that exists, and reading MNIST takes seconds: later, on the event loop, it
# would stall every user's calls and a worker's heartbeats (its master then drops it from the
# run), or eat the run's time. The event loop's clock then moves on past those seconds, or the
# --run-time timer Locust sets next would count them and end the run at once.
if _runs_users():
    load_data()
    gevent.get_hub().loop.update_now()


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument(
        "--task-weights",
        env_var="LOADTEST_TASK_WEIGHTS",
        default="",
        help="weights of the RPCs, as name=weight pairs: " + ",".join(DEFAULT_WEIGHTS),
    )
    parser.add_argument("--deadline-s", env_var="LOADTEST_DEADLINE_S", type=float, default=10.0)
    parser.add_argument(
        "--max-p95-ms",
        env_var="LOADTEST_MAX_P95_MS",
        type=float,
        default=0.0,
        help="fail the run when the 95th percentile of all calls is above this; 0: no limit",
    )
    parser.add_argument("--tls-ca-file", env_var="LOADTEST_TLS_CA_FILE", default="")
    parser.add_argument("--auth-token", env_var="LOADTEST_AUTH_TOKEN", default="", is_secret=True)


class RpcFailure(Exception):
    """A failed call, named by its status code so that Locust's failure table groups by it."""


class GatewayUser(User):
    """One client of the gateway: its own channel, and a mix of every RPC."""

    # Closed loop, as real clients that wait for an answer before the next call.
    wait_time = staticmethod(lambda: 0.0)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self._deadline_s = options.deadline_s if options else 10.0
        self._metadata = _auth_metadata(options.auth_token if options else "")
        self._channel = _channel(self.host or "localhost:50051", options)
        self._stub = gateway_pb2_grpc.GatewayServiceStub(self._channel)
        self._workload = Workload(word_pools())

    def on_stop(self) -> None:
        self._channel.close()

    def classify(self) -> None:
        self._unary("Classify", self._stub.Classify, self._workload.classify())

    def recognize_digits(self) -> None:
        request = self._workload.recognize_digits()
        self._unary("RecognizeDigits", self._stub.RecognizeDigits, request)

    def forecast(self) -> None:
        self._unary("Forecast", self._stub.Forecast, self._workload.forecast())

    def stream_forecast(self) -> None:
        request = self._workload.stream_forecast()

        def read_stream() -> int:
            stream = self._stub.StreamForecast(
                request, timeout=self._deadline_s, metadata=self._metadata
            )
            return sum(point.ByteSize() for point in stream)

        self._timed("StreamForecast", read_stream)

    def similar_words(self) -> None:
        self._unary("SimilarWords", self._stub.SimilarWords, self._workload.similar_words())

    def encode(self) -> None:
        self._unary("Encode", self._stub.Encode, self._workload.encode())

    def list_models(self) -> None:
        self._unary("ListModels", self._stub.ListModels, gateway_pb2.ListModelsRequest())

    def get_model(self) -> None:
        self._unary("GetModel", self._stub.GetModel, self._workload.get_model())

    def _unary(self, name: str, method: Callable[..., Any], request: Any) -> None:
        def call() -> int:
            response = method(request, timeout=self._deadline_s, metadata=self._metadata)
            return int(response.ByteSize())

        self._timed(name, call)

    def _timed(self, name: str, call: Callable[[], int]) -> None:
        started = time.perf_counter()
        length = 0
        exception: Exception | None = None
        try:
            length = call()
        except grpc.RpcError as error:
            exception = RpcFailure(f"{error.code().name}: {error.details()}")
        self.environment.events.request.fire(
            request_type="grpc",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=length,
            exception=exception,
            context={},
        )


@events.init.add_listener
def _configure(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    weights = parse_weights(options.task_weights if options else "")
    # Locust picks a task uniformly from this list, so a weight is a number of entries.
    GatewayUser.tasks = [
        getattr(GatewayUser, name) for name, weight in weights.items() for _ in range(weight)
    ]


@events.test_stopping.add_listener
def _report_before_stopping(environment: Environment, **_: Any) -> None:
    """A worker told to quit stops its users (letting calls in flight finish) and only then sends
    its last report, which its master waits half a second for (Locust issue #1426): up to three
    seconds of calls would be left out of the verdict. Reporting at once leaves out at most the
    calls in flight."""
    if isinstance(environment.runner, WorkerRunner):
        environment.runner._send_stats()


@events.quitting.add_listener
def _verdict(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return  # the master judges the whole run
    total = environment.stats.total
    options = environment.parsed_options
    limit_ms = options.max_p95_ms if options else 0.0
    p95_ms = total.get_response_time_percentile(0.95) or 0.0
    if total.num_failures:
        print(f"load test failed: {total.num_failures} of {total.num_requests} calls failed")
        environment.process_exit_code = 1
    elif total.num_requests == 0:
        print("load test failed: no call completed")
        environment.process_exit_code = 1
    elif limit_ms and p95_ms > limit_ms:
        print(f"load test failed: p95 {p95_ms:.0f} ms is above --max-p95-ms {limit_ms:.0f}")
        environment.process_exit_code = 1
    else:
        print(f"load test passed: {total.num_requests} calls, none failed, p95 {p95_ms:.0f} ms")
        environment.process_exit_code = 0


def _channel(host: str, options: Any) -> grpc.Channel:
    target = host.removeprefix("grpc://").removeprefix("grpcs://")
    ca_file = options.tls_ca_file if options else ""
    if not ca_file:
        return grpc.insecure_channel(target)
    with open(ca_file, "rb") as ca:
        return grpc.secure_channel(target, grpc.ssl_channel_credentials(ca.read()))


def _auth_metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()
