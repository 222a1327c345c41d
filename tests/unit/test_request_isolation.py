"""Nothing a request carries reaches a shell, an interpreter or a file path: the serving code
runs no subprocess, evaluates nothing, unpickles no bytes a client wrote (only the REST body
parser's worker processes send their own results back through multiprocessing), and opens files
only from its own settings (config files, certificates, the model repository)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVING_CODE = Path(__file__).resolve().parents[2] / "services"
PACKAGES = ("gateway", "modelserver")
FORBIDDEN_MODULES = {"subprocess", "pickle", "marshal", "shelve", "pty"}
FORBIDDEN_BUILTINS = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_OS_CALLS = {"system", "popen", "spawnl", "spawnv", "execv", "execl", "execvp"}


def sources() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (SERVING_CODE / package).rglob("*.py"))


@pytest.mark.parametrize("path", sources(), ids=lambda path: str(path.relative_to(SERVING_CODE)))
def test_serving_code_runs_no_shell_and_evaluates_nothing(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names = {(node.module or "").split(".")[0]}
        else:
            names = set()
        assert not names & FORBIDDEN_MODULES, f"{path}:{node.lineno} imports {names}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in FORBIDDEN_BUILTINS, f"{path}:{node.lineno} {node.func.id}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id == "os":
                assert node.func.attr not in FORBIDDEN_OS_CALLS, f"{path}:{node.lineno}"
