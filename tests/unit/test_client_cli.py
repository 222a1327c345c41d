"""The command-line client: its bad options end as argparse errors do (one line naming the
option and what is valid, exit status 2, never a traceback; none of them needs a gateway), a
failed call is one line with its status code, and answers from a gateway in this process are
printed for people or, with --json, as one line of JSON each."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from certificates import CertificateAuthority

from services.client import __main__ as client
from services.client.__main__ import main
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc

NOWHERE = "--target=localhost:1"  # nothing is called: each error comes before any call


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["classify", "--wine-row", "500"],
            "classify: error: --wine-row: 500 is not a row of the wine data; use 0 to 177",
        ),
        (["classify", "--wine-row", "-1"], "--wine-row: -1 is not a row of the wine data"),
        (["classify", "--values", "1,x,3"], "classify: error: --values: 'x' is not a number"),
        (["classify", "--feature", "alcohol"], "--feature: expected NAME=VALUE, got 'alcohol'"),
        (["classify", "--feature", "alcohol=1,2"], "--feature: expected NAME=VALUE"),
        (["forecast", "--history", "112,1e3x"], "forecast: error: --history: '1e3x' is not a"),
        (
            ["forecast", "--history", "1", "--horizon", "99999999999"],
            "argument --horizon: must be from -2147483648 to 2147483647; got 99999999999",
        ),
        (["similar", "--word", "king", "--k", "ten"], "argument --k: 'ten' is not an integer"),
        (
            ["similar", "--word", "king", "--model-version", "-2"],
            "argument --model-version: must be from 0 to",
        ),
        (
            ["recognize", "/nonexistent/seven.png"],
            "recognize: error: No such file or directory: /nonexistent/seven.png",
        ),
        (["encode", "/"], "encode: error: Is a directory: /"),
        (["--timeout", "nan", "list-models"], "argument --timeout: must be more than 0"),
        (["--timeout", "inf", "list-models"], "at most 86400 seconds; got 'inf'"),
        (["--timeout", "0", "list-models"], "argument --timeout: must be more than 0"),
        (
            ["--tls-ca", "/nonexistent/ca.pem", "list-models"],
            "error: No such file or directory: /nonexistent/ca.pem",
        ),
        (["--token", "caf\u00e9", "list-models"], "argument --token: a bearer token is visible"),
        (["--target=", "list-models"], "argument --target: give the gateway's address"),
        (["--tls-ca", "/", "list-models"], "error: Is a directory: /"),
        (
            ["--tls-ca", __file__, "list-models"],
            f"error: --tls-ca: no PEM certificate in {__file__}",
        ),
    ],
    ids=[
        "wine-row-too-large",
        "wine-row-negative",
        "values-word",
        "feature-without-value",
        "feature-two-values",
        "history-word",
        "horizon-over-int32",
        "k-word",
        "negative-version",
        "missing-file",
        "directory",
        "timeout-nan",
        "timeout-inf",
        "timeout-zero",
        "missing-ca-file",
        "token-not-ascii",
        "empty-target",
        "directory-as-ca-file",
        "ca-file-not-pem",
    ],
)
def test_bad_options_are_one_line_errors_with_status_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([NOWHERE, *args])

    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    last_line = captured.err.rstrip("\n").splitlines()[-1]
    assert message in last_line
    assert last_line.startswith("python -m services.client")


def test_a_bad_token_is_not_echoed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([NOWHERE, "--token", "s3cr\u00e9t", "list-models"])
    assert "s3cr" not in capsys.readouterr().err


def test_a_client_key_that_is_not_the_certificates_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = CertificateAuthority(tmp_path, "test")
    mine, other = ca.issue_client("mine"), ca.issue_client("other")
    tls = [
        f"--tls-ca={ca.cert_file}",
        f"--tls-cert={mine.cert_file}",
        f"--tls-key={other.key_file}",
    ]

    with pytest.raises(SystemExit) as exited:
        main([NOWHERE, *tls, "list-models"])

    assert exited.value.code == 2
    last_line = capsys.readouterr().err.rstrip("\n").splitlines()[-1]
    assert "error: --tls-cert, --tls-key:" in last_line
    assert "are not a PEM certificate and its unencrypted private key" in last_line


def test_a_gateway_that_refuses_the_connection_is_one_line_unavailable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([NOWHERE, "--timeout=10", "list-models"]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1
    assert captured.err.startswith("UNAVAILABLE: ")


def test_ctrl_c_during_a_call_exits_quietly_with_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Interrupted:
        def __init__(self, channel: grpc.Channel) -> None:
            pass

        def ListModels(self, request: Any, timeout: float) -> Any:
            raise KeyboardInterrupt

    monkeypatch.setattr(client, "Stub", Interrupted)

    assert main([NOWHERE, "list-models"]) == 130
    assert capsys.readouterr() == ("", "")


MODEL = gateway_pb2.ModelVersionRef(name="forecaster", version=3)


class CannedGateway(gateway_pb2_grpc.GatewayServiceServicer):
    """Answers of a gateway, made up: what the client prints of them is under test."""

    def ListModels(self, request: Any, context: Any) -> gateway_pb2.ListModelsResponse:
        available = gateway_pb2.ModelVersionStatus(
            version=3, state=gateway_pb2.MODEL_VERSION_STATE_AVAILABLE
        )
        return gateway_pb2.ListModelsResponse(
            models=[
                gateway_pb2.ModelInfo(
                    name="forecaster", rpc="Forecast", serving_version=3, versions=[available]
                ),
                gateway_pb2.ModelInfo(name="word2vec", rpc="SimilarWords"),
            ]
        )

    def StreamForecast(
        self, request: gateway_pb2.StreamForecastRequest, context: Any
    ) -> Iterator[gateway_pb2.StreamForecastResponse]:
        for step in range(1, request.horizon + 1):
            value = request.history[-1] + step + 0.123456
            yield gateway_pb2.StreamForecastResponse(step=step, value=value, model=MODEL)

    def Forecast(
        self, request: gateway_pb2.ForecastRequest, context: Any
    ) -> gateway_pb2.ForecastResponse:
        values = [request.history[-1] + step for step in range(1, request.horizon + 1)]
        return gateway_pb2.ForecastResponse(values=values, model=MODEL)


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    gateway_pb2_grpc.add_GatewayServiceServicer_to_server(CannedGateway(), server)
    port = server.add_insecure_port("localhost:0")
    server.start()
    yield f"--target=localhost:{port}"
    server.stop(grace=None)


def printed(capsys: pytest.CaptureFixture[str], args: list[str]) -> list[str]:
    assert main(args) == 0
    return capsys.readouterr().out.splitlines()


def test_list_models_reads_as_a_table(gateway: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert printed(capsys, [gateway, "list-models"]) == [
        "MODEL       RPC           SERVING  VERSIONS",
        "forecaster  Forecast      3        3 available",
        "word2vec    SimilarWords  none     none",
    ]


def test_list_models_json_is_one_line_without_signatures(
    gateway: str, capsys: pytest.CaptureFixture[str]
) -> None:
    [line] = printed(capsys, [gateway, "--json", "list-models"])

    assert json.loads(line)["models"][1] == {
        "name": "word2vec",
        "rpc": "SimilarWords",
        "serving_version": "0",
        "versions": [],
    }


def test_a_streamed_forecast_is_one_line_per_value(
    gateway: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [gateway, "forecast", "--history", "100,200", "--horizon", "3", "--stream"]

    assert printed(capsys, args) == [
        "forecaster version 3",
        "t+1  201.1",
        "t+2  202.1",
        "t+3  203.1",
    ]


def test_a_streamed_forecast_in_json_is_one_object_per_value(
    gateway: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [gateway, "--json", "forecast", "--history", "100,200", "--horizon", "3", "--stream"]

    points = [json.loads(line) for line in printed(capsys, args)]

    assert [point["step"] for point in points] == [1, 2, 3]
    assert points[0] == {
        "step": 1,
        "value": 201.123456,
        "model": {"name": "forecaster", "version": "3"},
    }


def test_an_airpassengers_forecast_begins_in_january_1960(
    gateway: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The training part of AirPassengers is its first 132 months, 1949-01 to 1959-12.
    lines = printed(capsys, [gateway, "forecast", "--airpassengers", "--horizon", "13"])

    assert lines[0] == "forecaster version 3"
    assert lines[1] == "1960-01  406.0"  # the canned gateway adds 1 to 1959-12's 405
    assert lines[-1].startswith("1961-01  ")
