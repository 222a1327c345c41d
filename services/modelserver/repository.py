"""The model repository on disk: `<base_path>/<integer version>/`, and which versions to serve.

Only directories named by a non-negative integer are versions; anything else (a hidden temporary
sibling of a version being published, `README`, ...) is ignored, as TensorFlow Serving does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

from services.modelserver.config import VersionPolicy
from training.contracts.common import is_version_name


class BasePathNotFoundError(Exception):
    """The model's base path does not exist (or is not a directory)."""


def list_version_dirs(base_path: Path) -> dict[int, Path]:
    """Maps each version number found under `base_path` to its directory."""
    if not base_path.is_dir():
        raise BasePathNotFoundError(str(base_path))
    versions: dict[int, Path] = {}
    for child in base_path.iterdir():
        name = child.name
        if not is_version_name(name) or not child.is_dir():
            continue
        version = int(name)
        # "123" and "0000123" are the same version; keep one of them, deterministically.
        if version not in versions or name < versions[version].name:
            versions[version] = child
    return versions


# A version directory whose files changed this recently may still be being written.
SETTLE_SECONDS = 1.0

Fingerprint = tuple[int, int, int]
"""(files, bytes, newest modification in ns) of a version directory."""


def fingerprint(version_dir: Path) -> Fingerprint:
    """What changes while a version directory is still being written."""
    files = size = 0
    try:
        newest = os.stat(version_dir).st_mtime_ns
    except FileNotFoundError:
        return 0, 0, 0
    for root, directories, names in os.walk(version_dir):
        for name in [*names, *directories]:
            try:
                stat = os.stat(os.path.join(root, name))
            except FileNotFoundError:
                continue  # removed while we looked: the next poll sees the result
            files += 1
            size += stat.st_size
            newest = max(newest, stat.st_mtime_ns)
    return files, size, newest


def is_settled(print_: Fingerprint, settle_seconds: float = SETTLE_SECONDS) -> bool:
    """Whether nothing in the directory changed for ``settle_seconds``."""
    return time.time_ns() - print_[2] >= settle_seconds * 1e9


def select_versions(available: Iterable[int], policy: VersionPolicy) -> set[int]:
    """The versions the policy wants served, out of those on disk."""
    on_disk = set(available)
    if policy.kind == "all":
        return on_disk
    if policy.kind == "specific":
        return on_disk & policy.versions
    return set(sorted(on_disk, reverse=True)[: policy.num_versions])
