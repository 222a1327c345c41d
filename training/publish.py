"""Atomic, versioned publishing into a TensorFlow Serving model repository.

A model server polls ``<model_root>/<integer>/`` directories and loads any new one it sees, so a
version must never be visible half written. We fill a hidden temporary sibling (servers only look at
integer names) and ``os.rename`` it into place, which is atomic on one filesystem.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from training.contracts.common import is_version_name

_TEMP_PREFIX = ".publishing-"
_WITHDRAW_PREFIX = ".withdrawing-"
_DEFAULT_ATTEMPTS = 20
_VERSION_DIR_MODE = 0o755

WriteVersion = Callable[[Path, int], None]
"""Fills a directory that will be published as the given version (which its files may name)."""


@dataclass(frozen=True)
class PublishedVersion:
    """A version that is now visible to model servers."""

    version: int
    path: Path


class PublishError(RuntimeError):
    """A version cannot be published: the folder is not writable, or no free version number
    could be claimed within the allowed attempts."""


def check_writable(model_root: Path) -> None:
    """Raises PublishError, naming the folder and the user, unless a version could be published
    under ``model_root``: checked before hours of training rather than after. It writes rather
    than asks os.access, which NFS servers may answer wrongly."""
    try:
        model_root.mkdir(parents=True, exist_ok=True)
        os.rmdir(tempfile.mkdtemp(prefix=_TEMP_PREFIX, dir=model_root))
    except OSError as exc:
        raise PublishError(
            f"cannot publish into {model_root} as uid {os.getuid()}: {exc.strerror}. "
            "Make the model repository writable for this user (on an NFS-like volume the "
            "pod's fsGroup is not applied; see the README's Filestore note)"
        ) from exc


def existing_versions(model_root: Path) -> list[int]:
    """Integer-named version directories under ``model_root``, ascending; other names skipped."""
    if not model_root.is_dir():
        return []
    return sorted(
        int(entry.name)
        for entry in model_root.iterdir()
        if entry.is_dir() and is_version_name(entry.name)
    )


def latest_version(model_root: Path) -> int | None:
    """The highest published version, or None when there is none yet."""
    versions = existing_versions(model_root)
    return versions[-1] if versions else None


def publish_version(
    model_root: Path, write: WriteVersion, max_attempts: int = _DEFAULT_ATTEMPTS
) -> PublishedVersion:
    """Publish the next version of a model: ``write`` fills a hidden temp dir, renamed into place.

    If another job publishes the same number while ``write`` runs, the rename fails instead of
    overwriting; the temp dir is discarded and ``write`` runs again for the next free number, so
    anything written inside (such as the version in a metrics file) matches the directory name.
    The temp dir is removed whenever ``write`` or the rename fails.
    """
    model_root.mkdir(parents=True, exist_ok=True)
    version = (latest_version(model_root) or 0) + 1
    for _ in range(max_attempts):
        temp_dir = Path(tempfile.mkdtemp(prefix=_TEMP_PREFIX, dir=model_root))
        # mkdtemp makes it owner-only; a model server may run as another user (a shared volume).
        temp_dir.chmod(_VERSION_DIR_MODE)
        target = model_root / str(version)
        try:
            write(temp_dir, version)
            claimed = _rename_unless_taken(temp_dir, target)
        except BaseException:
            shutil.rmtree(temp_dir, ignore_errors=True)
            raise
        if claimed:
            return PublishedVersion(version=version, path=target)
        # Lost the race for this number: discard our copy, move past all published meanwhile.
        shutil.rmtree(temp_dir, ignore_errors=True)
        version = max(version, latest_version(model_root) or 0) + 1
    raise PublishError(f"no free version under {model_root} after {max_attempts} attempts")


def withdraw_version(model_root: Path, version: int) -> None:
    """Removes a published version (a rollback): model servers then serve the newest remaining.

    The directory is first renamed to a hidden name, which is atomic, so a polling server sees
    the whole version or none of it, never one half deleted.
    """
    source = model_root / str(version)
    if version not in existing_versions(model_root):
        raise FileNotFoundError(f"{source} is not a published version")
    # rename(2) may replace an empty directory: mkdtemp claims a unique hidden name for it.
    hidden = Path(tempfile.mkdtemp(prefix=f"{_WITHDRAW_PREFIX}{version}-", dir=model_root))
    os.rename(source, hidden)
    shutil.rmtree(hidden)


def _rename_unless_taken(source: Path, target: Path) -> bool:
    """Rename ``source`` to ``target`` unless ``target`` exists; False when it was taken."""
    # rename(2) silently replaces an *empty* target directory, so refuse any existing one first;
    # a publisher's target is never empty, and for a non-empty one rename itself fails.
    if target.exists():
        return False
    try:
        os.rename(source, target)
    except OSError as error:
        if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
            return False
        raise
    return True
