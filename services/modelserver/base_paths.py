"""What the models' base paths on disk offer the model manager: which versions to load now.

The disk is read in worker threads, which return what they found and change nothing; what was
found is applied to a model's slot on the event loop. A version is loaded only once it is whole
(no file changed for a moment), and a version that failed is retried only once its directory
changed.

TensorFlow Serving's file-system source polls every model's base path in one pass, and one
missing base path fails the whole pass: no model's versions change until it is back.
`FileSystemPoll` follows it, since a stand-in that loaded the others would hide that from anyone
testing here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from services.modelserver.model_slot import ModelSlot
from services.modelserver.repository import (
    BasePathNotFoundError,
    Fingerprint,
    fingerprint,
    is_settled,
    list_version_dirs,
    select_versions,
)

logger = logging.getLogger(__name__)


class FileSystemPoll:
    """Whether a poll of every model's base path fails, as TensorFlow Serving's does."""

    def __init__(self) -> None:
        self._failure: str | None = None  # why the last poll failed, if it did

    async def fails(self, slots: Sequence[ModelSlot]) -> bool:
        """Whether some model's base path is missing, which fails TensorFlow Serving's poll of
        every model; logged when the reason changes."""
        missing = await asyncio.to_thread(
            lambda: [slot for slot in slots if not slot.definition.base_path.is_dir()]
        )
        for slot in missing:
            slot.problem = (
                f"Could not find base path {slot.definition.base_path} for servable {slot.name}"
            )
        failure = (
            f"FileSystemStoragePathSource encountered a file-system access error: "
            f"{missing[0].problem}"
            if missing
            else None
        )
        if failure is not None and failure != self._failure:
            logger.error(failure)
        self._failure = failure
        return failure is not None


def whole_versions(
    slot: ModelSlot, wanted: set[int], prints: Mapping[int, Fingerprint], settle_seconds: float
) -> set[int]:
    """The wanted versions to load now, of those not serving (``prints``): written completely
    (no file changed for a moment), and not failed in the state they are in. Runs on the
    event loop, since it updates the slot."""
    slot.failed = {v: fp for v, fp in slot.failed.items() if v in wanted}
    slot.unsettled = set()
    ready = set()
    for version, print_ in prints.items():
        if not is_settled(print_, settle_seconds):
            slot.unsettled.add(version)
        elif slot.failed.get(version) not in (None, print_):
            logger.info(
                "%s version %d changed on disk since it failed; retrying", slot.name, version
            )
            del slot.failed[version]
            ready.add(version)
        elif version not in slot.failed:
            ready.add(version)
    return ready


async def still_wanted(slot: ModelSlot, version: int) -> bool:
    """Whether the model's version policy still wants the version, as its base path is now."""
    try:
        on_disk = await asyncio.to_thread(list_version_dirs, slot.definition.base_path)
    except BasePathNotFoundError:
        return True  # nothing new is known; keep the versions wanted so far
    return version in select_versions(on_disk, slot.definition.version_policy)


def fingerprints(paths: Mapping[int, Path]) -> dict[int, Fingerprint]:
    """Each version directory's fingerprint; reads the disk, so it runs in a worker thread."""
    return {version: fingerprint(path) for version, path in paths.items()}
