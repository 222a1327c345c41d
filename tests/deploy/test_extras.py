"""pyproject.toml's extras: one per part, the same pin of a package wherever it appears, and all
of them in the development environment that `make run` and `make test` use."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from rendered import REPO

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]
PARTS = {"gateway", "client", "loadtest", "modelserver", "training"}


def test_every_part_has_an_extra() -> None:
    assert set(EXTRAS) == {*PARTS, "data", "dev"}


def test_the_shared_dependencies_are_grpc_and_protobuf_alone() -> None:
    # What every part needs; TensorFlow comes only with the modelserver and training extras.
    names = {canonicalize_name(Requirement(line).name) for line in PROJECT["dependencies"]}
    assert names == {"grpcio", "protobuf"}


def test_a_package_has_the_same_pin_wherever_it_appears() -> None:
    pins: dict[str, set[str]] = {}
    for line in [*PROJECT["dependencies"], *(line for lines in EXTRAS.values() for line in lines)]:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) != PROJECT["name"]:
            pins.setdefault(canonicalize_name(requirement.name), set()).add(str(requirement))
    assert {name: pin for name, pin in pins.items() if len(pin) > 1} == {}


def test_the_development_environment_installs_every_extra() -> None:
    makefile = (REPO / "Makefile").read_text()
    (installed,) = re.findall(r"\) -e '\.\[([\w,-]+)\]'", makefile)
    extras = set(installed.split(","))
    pending = list(extras)
    while pending:  # with the project's own extras that those name (`tf-serving-suite[data]`)
        for line in EXTRAS[pending.pop()]:
            requirement = Requirement(line)
            if requirement.name == PROJECT["name"]:
                pending += requirement.extras - extras
                extras |= requirement.extras
    assert extras == set(EXTRAS)
