"""The command-line client's bad options end as argparse errors do: one line naming the option
and what is valid, exit status 2, never a traceback. None of them needs a gateway."""

from __future__ import annotations

import pytest

from services.client.__main__ import main

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
