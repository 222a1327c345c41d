"""The installed size of a requirement set: pyproject.toml's extras, resolved over what is
installed here."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from benchmarks.footprint import RequirementSet, _files_size, installed_size, requirement_set

PYPROJECT = """
[project]
name = "Some_Suite"
dependencies = ["numpy>=2"]

[project.optional-dependencies]
data = ["pillow"]
gateway = ["some-suite[data]", "grpcio; python_version >= '3'"]
"""


def test_an_extra_adds_to_the_base_dependencies_with_the_project_s_own_extras_expanded(
    tmp_path: Path,
) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(PYPROJECT)
    gateway = requirement_set("gateway", pyproject)
    assert gateway.description == "extra gateway"
    assert sorted(gateway.requirements) == ["grpcio; python_version >= '3'", "numpy>=2", "pillow"]


def test_without_the_extra_it_is_the_base_dependencies(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(PYPROJECT)
    assert requirement_set("modelserver", pyproject) == RequirementSet(
        "base dependencies", ("numpy>=2",)
    )


def test_the_installed_size_counts_every_distribution_required_on_the_way() -> None:
    numpy_bytes = _files_size(importlib.metadata.distribution("numpy"))
    assert numpy_bytes > 1_000_000
    size = installed_size(RequirementSet("test", ("scikit-learn", "numpy")))
    # scikit-learn requires numpy and scipy: each counted once.
    assert size.bytes_by_distribution["numpy"] == numpy_bytes
    assert "scipy" in size.bytes_by_distribution
    assert size.megabytes * 1e6 == sum(size.bytes_by_distribution.values()) > numpy_bytes
    assert size.largest(1)[0][1] == max(size.bytes_by_distribution.values())


def test_markers_that_do_not_apply_and_extras_not_requested_are_skipped() -> None:
    plain = installed_size(RequirementSet("test", ("numpy; python_version < '3'", "pytest")))
    assert "numpy" not in plain.bytes_by_distribution
    assert "pytest" in plain.bytes_by_distribution
    assert "hypothesis" not in plain.bytes_by_distribution  # pytest's extras bring it, not pytest
    assert installed_size(RequirementSet("test", ("no-such-distribution",))).missing == (
        "no-such-distribution",
    )
