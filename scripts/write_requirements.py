"""Writes pyproject.toml's dependency lists as requirement files, for the Docker build.

Images install their dependencies from these files in a layer of their own, before any code is
copied, so that a code change does not reinstall them. Writes, into the given folder:
serving.txt (the runtime dependencies), <extra>.txt for each optional group, and
tensorflow-gpu.txt (the same pinned TensorFlow, with the CUDA libraries a GPU node needs).

python scripts/write_requirements.py PYPROJECT OUT_DIR
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any


def requirement_files(pyproject: dict[str, Any]) -> dict[str, list[str]]:
    project = pyproject["project"]
    serving: list[str] = project["dependencies"]
    extras: dict[str, list[str]] = project["optional-dependencies"]
    files = {"serving.txt": serving}
    files |= {f"{extra}.txt": _expanded(project["name"], extras, extra) for extra in extras}
    (tensorflow,) = (dep for dep in serving if dep.startswith("tensorflow=="))
    files["tensorflow-gpu.txt"] = [tensorflow.replace("==", "[and-cuda]==", 1)]
    return files


def _expanded(project: str, extras: dict[str, list[str]], extra: str) -> list[str]:
    """An extra's requirements, with the project's own extras it names (`project[data]`) in
    their place: a requirements file cannot name the project it belongs to."""
    requirements = []
    for requirement in extras[extra]:
        own = re.fullmatch(rf"{re.escape(project)}\[([\w-]+)\]", requirement)
        requirements += _expanded(project, extras, own.group(1)) if own else [requirement]
    return requirements


def main(pyproject_path: str, out_dir: str) -> None:
    pyproject = tomllib.loads(Path(pyproject_path).read_text())
    for name, requirements in requirement_files(pyproject).items():
        (Path(out_dir) / name).write_text("".join(f"{line}\n" for line in requirements))


if __name__ == "__main__":
    main(*sys.argv[1:])
