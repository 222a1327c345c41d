"""Resident memory and start-up time of the model server (all five models) and the gateway, and
the installed size of what a process's requirement set pulls in."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from benchmarks.stack import Started, memory_mib

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


@dataclass(frozen=True)
class RequirementSet:
    description: str  # which: "extra gateway", or "base dependencies"
    requirements: tuple[str, ...]


@dataclass(frozen=True)
class InstalledSize:
    """The distributions a requirement set resolves to, as installed here, and their size."""

    requirement_set: str  # its description
    bytes_by_distribution: dict[str, int]
    missing: tuple[str, ...] = ()  # required, but not installed here: not counted

    @property
    def megabytes(self) -> float:
        return sum(self.bytes_by_distribution.values()) / 1e6

    def largest(self, count: int) -> list[tuple[str, int]]:
        return sorted(self.bytes_by_distribution.items(), key=lambda item: -item[1])[:count]


@dataclass(frozen=True)
class ProcessFootprint:
    name: str
    seconds_to_serving: float
    rss_after_start_mib: float
    peak_rss_mib: float = 0.0  # the high-water mark, read after every benchmark ran
    dependencies: InstalledSize | None = None


def at_start(
    name: str, started: Started, dependencies: InstalledSize | None = None
) -> ProcessFootprint:
    return ProcessFootprint(
        name,
        started.seconds_to_serving,
        memory_mib(started.child.pid, "VmRSS"),
        dependencies=dependencies,
    )


def with_peak(footprint: ProcessFootprint, started: Started) -> ProcessFootprint:
    return dataclasses.replace(footprint, peak_rss_mib=memory_mib(started.child.pid, "VmHWM"))


def requirement_set(extra: str, pyproject: Path = PYPROJECT) -> RequirementSet:
    """What installing the project with ``extra`` requires, by pyproject.toml: the base
    dependencies and the extra's (with the project's own extras it names expanded), or the base
    dependencies alone if there is no such extra."""
    project = tomllib.loads(pyproject.read_text())["project"]
    extras: dict[str, list[str]] = project.get("optional-dependencies", {})
    if extra not in extras:
        return RequirementSet("base dependencies", tuple(project.get("dependencies", [])))
    own_name = canonicalize_name(project["name"])
    requirements = list(project.get("dependencies", []))
    pending, seen = [extra], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in extras.get(name, []):
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) == own_name:
                pending.extend(requirement.extras)
            else:
                requirements.append(line)
    return RequirementSet(f"extra {extra}", tuple(requirements))


def installed_size(requirement_set: RequirementSet) -> InstalledSize:
    """The transitive closure of a requirement set over the installed distributions' own
    requirements (markers evaluated here, extras followed only where requested), with the
    size on disk of each distribution's recorded files."""
    sizes: dict[str, int] = {}
    missing: list[str] = []
    requested: dict[str, set[str]] = {}  # a distribution's extras already followed
    pending = [(Requirement(line), {""}) for line in requirement_set.requirements]
    while pending:
        requirement, extras_of_parent = pending.pop()
        if requirement.marker is not None and not any(
            requirement.marker.evaluate({"extra": extra}) for extra in extras_of_parent
        ):
            continue
        name = canonicalize_name(requirement.name)
        wanted = {"", *requirement.extras}
        if name in requested and wanted <= requested[name]:
            continue
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
            continue
        requested.setdefault(name, set()).update(wanted)
        sizes.setdefault(name, _files_size(distribution))
        pending.extend((Requirement(line), wanted) for line in distribution.requires or [])
    return InstalledSize(requirement_set.description, sizes, tuple(sorted(set(missing))))


def _files_size(distribution: importlib.metadata.Distribution) -> int:
    """The bytes of the files a distribution's RECORD lists, those still there."""
    total = 0
    for file in distribution.files or []:
        path = Path(str(distribution.locate_file(file)))
        if path.is_file():
            total += path.stat().st_size
    return total
