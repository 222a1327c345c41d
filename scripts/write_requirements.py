"""Writes pyproject.toml's dependency lists as requirement files, for the Docker build.

Images install their dependencies from these files in a layer of their own, before any code is
copied, so that a code change does not reinstall them. Writes, into the given folder:
serving.txt (the runtime dependencies), <extra>.txt for each optional group, and
tensorflow-gpu.txt (the same pinned TensorFlow, with the CUDA libraries a GPU node needs).

python scripts/write_requirements.py PYPROJECT OUT_DIR
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def requirement_files(pyproject: dict[str, object]) -> dict[str, list[str]]:
    project = pyproject["project"]
    assert isinstance(project, dict)
    serving: list[str] = project["dependencies"]
    files = {"serving.txt": serving}
    files |= {f"{extra}.txt": deps for extra, deps in project["optional-dependencies"].items()}
    (tensorflow,) = (dep for dep in serving if dep.startswith("tensorflow=="))
    files["tensorflow-gpu.txt"] = [tensorflow.replace("==", "[and-cuda]==", 1)]
    return files


def main(pyproject_path: str, out_dir: str) -> None:
    pyproject = tomllib.loads(Path(pyproject_path).read_text())
    for name, requirements in requirement_files(pyproject).items():
        (Path(out_dir) / name).write_text("".join(f"{line}\n" for line in requirements))


if __name__ == "__main__":
    main(*sys.argv[1:])
