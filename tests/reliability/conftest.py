"""The suite as deployed, in processes of its own, for fault and fuzz tests: a model server with
all five models and batching on, and a gateway in front. The fuzz and cancel-storm tests share
one pair per worker: each must leave it up, and checks that it did."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from benchmarks.stack import ServingStack, serving_stack

# Fuzzing must not write a .hypothesis database into the tree, nor fail on a slow example.
settings.register_profile(
    "reliability",
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

FUZZ_CASES: dict[str, int] = {}


def count_case(api: str) -> None:
    FUZZ_CASES[api] = FUZZ_CASES.get(api, 0) + 1


@pytest.fixture(scope="session")
def deployed(
    full_models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServingStack]:
    with serving_stack(full_models_dir, tmp_path_factory.mktemp("stack"), {"default": []}) as stack:
        yield stack


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FUZZ_CASES:
        total = sum(FUZZ_CASES.values())
        cases = ", ".join(f"{api} {count}" for api, count in sorted(FUZZ_CASES.items()))
        terminalreporter.write_line(f"fuzz cases run: {total} ({cases})")
