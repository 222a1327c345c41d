"""The version the fleet of model-server replicas can serve, and the replicas behind a target."""

from __future__ import annotations

import pytest

from services.gateway.backend import VersionStatus
from services.gateway.fleet import STALE_AFTER_FAILURES, FleetView
from services.gateway.replicas import Target, parse_target


def available(*versions: int) -> list[VersionStatus]:
    return [VersionStatus(v, "AVAILABLE") for v in versions]


def fleet(**replicas: list[VersionStatus]) -> FleetView:
    view = FleetView()
    for address, versions in replicas.items():
        view.answered(address, versions)
    return view


def test_a_new_version_serves_only_once_every_replica_has_it() -> None:
    view = fleet(fast=available(1, 2), slow=available(1))
    assert view.choose_serving_version() == 1
    view.answered("slow", available(1, 2))
    assert view.choose_serving_version() == 2


def test_a_withdrawn_version_stops_serving_once_any_replica_dropped_it() -> None:
    view = fleet(fast=available(1), slow=available(1, 2))
    assert view.choose_serving_version() == 1
    assert view.holders(2) == ["slow"]


def test_replicas_that_share_no_version_serve_the_newest_held_by_the_most() -> None:
    # One version kept per replica (TensorFlow Serving's default policy), mid-rollout.
    view = fleet(a=available(2), b=available(1), c=available(2))
    assert view.choose_serving_version() == 2
    assert view.holders(2) == ["a", "c"]
    assert fleet(a=available(2), b=available(1)).choose_serving_version() == 2


def test_a_model_no_replica_has_has_no_version() -> None:
    half = fleet(a=available(1), b=[])  # a config that adds the model reached one replica
    assert half.choose_serving_version() == 1
    assert half.holders(1) == ["a"]
    assert fleet(a=[], b=[]).choose_serving_version() is None
    assert FleetView().choose_serving_version() is None


def test_a_failed_check_keeps_the_replicas_last_answer_until_it_keeps_failing() -> None:
    view = fleet(fast=available(1, 2), slow=available(1))
    for _ in range(STALE_AFTER_FAILURES - 1):
        view.failed("slow")
        assert view.choose_serving_version() == 1
    view.failed("slow")
    assert view.choose_serving_version() == 2  # slow is gone: round robin sends it nothing either
    assert view.holders(1) == ["fast"]
    view.answered("slow", available(1, 2))
    assert view.choose_serving_version() == 2


def test_replicas_the_target_no_longer_resolves_to_are_forgotten() -> None:
    view = fleet(old=available(1), new=available(1, 2))
    view.keep_only({"new"})
    assert view.choose_serving_version() == 2


def test_statuses_merge_what_the_replicas_report() -> None:
    view = fleet(fast=available(1, 2, 3), slow=[*available(1, 2), VersionStatus(3, "LOADING")])
    assert view.choose_serving_version() == 2
    assert view.statuses() == [
        VersionStatus(3, "LOADING"),
        VersionStatus(2, "AVAILABLE"),
        VersionStatus(1, "AVAILABLE"),
    ]
    withdrawn = fleet(fast=available(1, 2), slow=available(1, 2))
    assert withdrawn.choose_serving_version() == 2
    withdrawn.answered("fast", available(1))
    assert withdrawn.choose_serving_version() == 1
    assert withdrawn.statuses() == [VersionStatus(2, "UNLOADING"), VersionStatus(1, "AVAILABLE")]


@pytest.mark.parametrize(
    ("target", "parsed"),
    [
        ("localhost:8500", Target(host="localhost", port="8500")),
        ("10.0.0.7:8500", Target(host="10.0.0.7", port="8500")),
        ("[::1]:8500", Target(host="::1", port="8500")),
        (
            "dns:///tfserving.ns.svc.cluster.local:8500",
            Target(host="tfserving.ns.svc.cluster.local", port="8500"),
        ),
        ("dns://10.0.0.10/tfserving:8500", Target(host="tfserving", port="8500")),
        ("ipv4:127.0.0.1:1,127.0.0.1:2", Target(addresses=("127.0.0.1:1", "127.0.0.1:2"))),
        ("ipv6:[::1]:5,::1", Target(addresses=("[::1]:5", "[::1]:443"))),
        ("myhost", Target(host="myhost", port="443")),
        ("unix:/tmp/model.sock", None),
        ("unix-abstract:model", None),
    ],
)
def test_targets_parse_as_grpc_resolves_them(target: str, parsed: Target | None) -> None:
    assert parse_target(target) == parsed
