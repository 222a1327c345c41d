"""The model repository on disk: `<base_path>/<integer version>/`, and which versions to serve.

Only directories named by a non-negative integer are versions; anything else (a hidden temporary
sibling of a version being published, `README`, ...) is ignored, as TensorFlow Serving does.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from services.modelserver.config import VersionPolicy


class BasePathNotFoundError(Exception):
    """The model's base path does not exist (or is not a directory)."""


def list_version_dirs(base_path: Path) -> dict[int, Path]:
    """Maps each version number found under `base_path` to its directory."""
    if not base_path.is_dir():
        raise BasePathNotFoundError(str(base_path))
    versions: dict[int, Path] = {}
    for child in base_path.iterdir():
        name = child.name
        if not (name.isascii() and name.isdigit()) or not child.is_dir():
            continue
        version = int(name)
        # "123" and "0000123" are the same version; keep one of them, deterministically.
        if version not in versions or name < versions[version].name:
            versions[version] = child
    return versions


def select_versions(available: Iterable[int], policy: VersionPolicy) -> set[int]:
    """The versions the policy wants served, out of those on disk."""
    on_disk = set(available)
    if policy.kind == "all":
        return on_disk
    if policy.kind == "specific":
        return on_disk & policy.versions
    return set(sorted(on_disk, reverse=True)[: policy.num_versions])
