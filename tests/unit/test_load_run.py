"""`make loadtest`'s script: which hosts are this machine, where the local suite may be started,
and the port its gateway is given."""

from __future__ import annotations

import pytest
from run import _parser, _suite_flags, is_local


@pytest.mark.parametrize("host", ["localhost:50051", "127.0.0.1:6000", "[::1]:7000"])
def test_a_local_host(host: str) -> None:
    assert is_local(host)


@pytest.mark.parametrize(
    "host",
    ["gateway.example:50051", "localhost.example:50051", "10.0.0.7:50051", "[::2]:1", "localhost"],
)
def test_a_host_elsewhere_or_without_a_port(host: str) -> None:
    assert not is_local(host)


def test_the_local_suite_serves_on_the_hosts_port() -> None:
    assert _suite_flags("localhost:6000") == ["--gateway_port=6000"]
    assert _suite_flags("[::1]:50051") == ["--gateway_port=50051"]


def test_workers_default_to_none_and_are_not_negative() -> None:
    assert _parser().parse_args([]).workers == 0
    assert _parser().parse_args(["--workers", "3"]).workers == 3
    with pytest.raises(SystemExit):
        _parser().parse_args(["--workers", "-1"])
