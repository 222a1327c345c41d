"""Keeps each configured model's wanted versions loaded, following its base path on disk.

It mirrors TensorFlow Serving's AspiredVersionsManager with the AvailabilityPreservingPolicy:
a new version is loaded beside the serving ones and swapped in once it is AVAILABLE; only then
are versions the policy no longer wants unloaded, so a model never drops to zero versions
during a rollout, and a version that fails to load leaves the serving one in place.

All state changes happen on the event loop; loading and reading the disk run in worker threads,
which return what they found and change nothing. Each model is reconciled under its own asyncio
lock, so its poller and a config reload never load the same version twice. The map of serving
versions is replaced, never mutated, so a request that picked a version keeps it even when that
version is unloaded a moment later.

Each model's state is a ModelSlot (services/modelserver/model_slot.py); what its base path
offers, and whether the poll of every base path fails as TensorFlow Serving's does, comes from
services/modelserver/base_paths.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import tensorflow as tf

from services.common.bounded import shorten
from services.modelserver.base_paths import (
    FileSystemPoll,
    fingerprints,
    still_wanted,
    whole_versions,
)
from services.modelserver.config import ModelDefinition
from services.modelserver.errors import InvalidArgumentError, NotFoundError
from services.modelserver.model_slot import (
    ModelSlot,
    ModelsUnavailableError,
    unavailable_models_message,
)
from services.modelserver.repository import (
    SETTLE_SECONDS,
    BasePathNotFoundError,
    fingerprint,
    list_version_dirs,
    select_versions,
)
from services.modelserver.servable import Servable, ServableLoadError, load_servable
from services.modelserver.versions import ServableRequest, VersionState, VersionStatus

logger = logging.getLogger(__name__)

Loader = Callable[[str, int, Path], Servable]
AvailabilityListener = Callable[[str, bool | None], Awaitable[None]]
"""Told (model name, whether a version serves) on every change; None once a model is removed."""


class ModelManager:
    """Loads, serves and unloads the versions of the configured models."""

    def __init__(
        self,
        definitions: Sequence[ModelDefinition],
        *,
        poll_wait_seconds: float,
        max_num_load_retries: int = 5,
        load_retry_interval_seconds: float = 60.0,
        loader: Loader = load_servable,
        on_availability_change: AvailabilityListener | None = None,
        settle_seconds: float = SETTLE_SECONDS,
    ) -> None:
        self._slots = {definition.name: ModelSlot(definition) for definition in definitions}
        self._poll_wait_seconds = poll_wait_seconds
        self._max_num_load_retries = max_num_load_retries
        self._load_retry_interval_seconds = load_retry_interval_seconds
        self._loader = loader
        self._on_availability_change = on_availability_change
        self._settle_seconds = settle_seconds
        self._pollers: dict[str, asyncio.Task[None]] = {}
        self._file_system_poll = FileSystemPoll()

    @property
    def model_names(self) -> list[str]:
        return list(self._slots)

    async def start(self) -> None:
        """Loads what is on disk now, then keeps polling every poll_wait_seconds (if > 0)."""
        if self._poll_wait_seconds < 0:
            logger.warning("File system polling is disabled: no model versions will be loaded")
            return
        await self.sync_once()
        for slot in self._slots.values():
            self._start_polling(slot)

    async def stop(self) -> None:
        """Stops polling (and any load in progress); serving versions stay until released."""
        pollers, self._pollers = list(self._pollers.values()), {}
        for poller in pollers:
            poller.cancel()
        for poller in pollers:
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    async def sync_once(self, settle_attempts: int = 30) -> None:
        """One poll of every model's base path, with the loads and unloads it calls for; a
        version still being written is waited for (a moment at a time) rather than skipped."""
        await asyncio.gather(*(self._sync_model(slot) for slot in self._slots.values()))
        for _ in range(settle_attempts):
            waiting = [slot for slot in self._slots.values() if slot.unsettled]
            if not waiting:
                return
            await asyncio.sleep(self._settle_seconds / 2)
            await asyncio.gather(*(self._sync_model(slot) for slot in waiting))

    async def reload(self, definitions: Sequence[ModelDefinition]) -> list[str]:
        """Serves a new list of models, as TensorFlow Serving's ReloadConfig: models no longer
        listed are unloaded, new ones loaded, the others follow their new definition (base
        path, version policy, labels). Returns why each new model did not become available."""
        wanted = {definition.name: definition for definition in definitions}
        added = []
        for name, definition in wanted.items():
            slot = self._slots.get(name)
            if slot is None:
                slot = self._slots[name] = ModelSlot(definition)
                added.append(slot)
            else:
                slot.definition = definition
        if self._poll_wait_seconds >= 0:
            await self.sync_once()
            for slot in added:
                self._start_polling(slot)
        # Models that leave go last, once the new ones are in: a model that is renamed or
        # replaced never leaves a gap with neither serving.
        for name in [name for name in self._slots if name not in wanted]:
            await self._remove(name)
        return [slot.why_unavailable() for slot in added if not slot.serving]

    def has_model(self, name: str) -> bool:
        """Whether the model is in the config (whether or not a version serves)."""
        return name in self._slots

    def is_version_available(self, name: str, version: int) -> bool:
        slot = self._slots.get(name)
        return slot is not None and version in slot.serving

    def resolve(
        self, name: str, version: int | None = None, version_label: str | None = None
    ) -> ServableRequest:
        """Turns a model spec into a ServableRequest; a label must be in the model's config."""
        if version_label is not None:
            slot = self._slots.get(name)
            labels = slot.definition.version_labels if slot is not None else {}
            if version_label not in labels:
                raise InvalidArgumentError(
                    f"Unrecognized servable version label: {shorten(version_label)}"
                )
            version = labels[version_label]
        return ServableRequest(name, version)

    def servable(self, request: ServableRequest) -> Servable:
        """The serving version a request asks for, or NotFoundError as TensorFlow Serving says."""
        slot = self._slots.get(request.name)
        serving = slot.serving if slot is not None else {}
        if request.version is None and serving:
            return serving[max(serving)]
        if request.version is not None and request.version in serving:
            return serving[request.version]
        raise NotFoundError(f"Servable not found for request: {request.describe()}")

    def version_statuses(self, name: str) -> dict[int, VersionStatus]:
        """Every version of the model the server has seen, newest first (empty if none)."""
        slot = self._slots.get(name)
        if slot is None:
            return {}
        return dict(sorted(slot.statuses.items(), reverse=True))

    def is_available(self, name: str) -> bool:
        """Whether the model has at least one version serving."""
        slot = self._slots.get(name)
        return slot is not None and bool(slot.serving)

    async def wait_until_all_available(self, check_seconds: float = 0.05) -> None:
        """Returns once every configured model has a version AVAILABLE, as TensorFlow Serving
        waits before it listens; a model without versions is waited for, however long. Raises
        ModelsUnavailableError once a model's newest version has failed to load for good."""
        while True:
            failed = [slot.why_unavailable() for slot in self._slots.values() if slot.gave_up()]
            if failed:
                raise ModelsUnavailableError(unavailable_models_message(failed))
            if all(slot.serving for slot in self._slots.values()):
                return
            await asyncio.sleep(check_seconds)

    def _start_polling(self, slot: ModelSlot) -> None:
        if self._poll_wait_seconds > 0 and slot.name not in self._pollers:
            self._pollers[slot.name] = asyncio.create_task(
                self._poll_forever(slot), name=f"poll {slot.name}"
            )

    async def _remove(self, name: str) -> None:
        poller = self._pollers.pop(name, None)
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        slot = self._slots.pop(name)
        async with slot.lock:  # a reconcile in flight finishes before the model goes
            for version in list(slot.serving):
                self._unload(slot, version)
        logger.info("Model %s is no longer in the config: unloaded", name)
        if self._on_availability_change is not None:
            await self._on_availability_change(name, None)

    async def _poll_forever(self, slot: ModelSlot) -> None:
        while True:
            await asyncio.sleep(self._poll_wait_seconds)
            await self._sync_model(slot)

    async def _sync_model(self, slot: ModelSlot) -> None:
        async with slot.lock:
            if self._slots.get(slot.name) is not slot:
                return  # removed (or replaced) while this waited for the lock
            try:
                if await self._file_system_poll.fails(list(self._slots.values())):
                    return  # whatever serves keeps serving
                await self._reconcile(slot)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Whatever happened, the versions that serve keep serving; the next poll retries.
                logger.exception("Polling model %s failed", slot.name)
            await self._report_availability(slot)

    async def _reconcile(self, slot: ModelSlot) -> None:
        definition = slot.definition
        try:
            on_disk = await asyncio.to_thread(list_version_dirs, definition.base_path)
        except BasePathNotFoundError:
            # As in TensorFlow Serving, whatever serves keeps serving until the path is back.
            self._note_problem(
                slot, f"Could not find base path {definition.base_path} for servable {slot.name}"
            )
            return
        self._note_problem(
            slot,
            None
            if on_disk
            else f"No versions of servable {slot.name} found under base path "
            f"{definition.base_path}. Did you forget to name your leaf directory as a number "
            "(eg. '/1/')?",
        )

        wanted = select_versions(on_disk, definition.version_policy)
        candidates = {version: on_disk[version] for version in wanted - slot.serving.keys()}
        prints = await asyncio.to_thread(fingerprints, candidates)
        to_load = whole_versions(slot, wanted, prints, self._settle_seconds)

        # Newest first, as TensorFlow Serving's policy loads them.
        for version in sorted(to_load, reverse=True):
            await self._load(slot, version, on_disk[version])

        # Availability preserving: drop unwanted versions once a wanted one serves (or nothing
        # is wanted any more); until then keep the newest unwanted one.
        unwanted = sorted(version for version in slot.serving if version not in wanted)
        if wanted and not any(version in slot.serving for version in wanted):
            unwanted = unwanted[:-1]
        for version in unwanted:
            self._unload(slot, version)

    async def _load(self, slot: ModelSlot, version: int, path: Path) -> None:
        name = slot.name
        slot.statuses[version] = VersionStatus(VersionState.LOADING)
        attempts = self._max_num_load_retries + 1
        for attempt in range(1, attempts + 1):
            logger.info("Loading servable: {name: %s version: %d} from %s", name, version, path)
            try:
                servable = await asyncio.to_thread(self._loader, name, version, path)
            except ServableLoadError as exc:
                error = exc
            except Exception as exc:
                logger.exception("Unexpected failure loading %s version %d", name, version)
                error = ServableLoadError(tf.errors.UNKNOWN, f"{type(exc).__name__}: {exc}")
            else:
                slot.serving = {**slot.serving, version: servable}
                slot.statuses[version] = VersionStatus(VersionState.AVAILABLE)
                logger.info("Successfully loaded servable: {name: %s version: %d}", name, version)
                return
            logger.error(
                "Loading servable: {name: %s version: %d} failed (attempt %d of %d): %s",
                name,
                version,
                attempt,
                attempts,
                error.message,
            )
            if attempt < attempts:
                await asyncio.sleep(self._load_retry_interval_seconds)
                if not await still_wanted(slot, version):
                    # Like TensorFlow Serving: a version superseded meanwhile is not retried.
                    logger.info("Not retrying %s version %d: no longer wanted", name, version)
                    break
        slot.failed[version] = await asyncio.to_thread(fingerprint, path)
        slot.statuses[version] = VersionStatus(VersionState.END, error.tf_error_code, error.message)

    def _unload(self, slot: ModelSlot, version: int) -> None:
        # Requests that already hold this version finish with it; new ones no longer see it.
        slot.statuses[version] = VersionStatus(VersionState.UNLOADING)
        slot.serving = {v: servable for v, servable in slot.serving.items() if v != version}
        slot.statuses[version] = VersionStatus(VersionState.END)
        logger.info("Unloaded servable: {name: %s version: %d}", slot.name, version)

    @staticmethod
    def _note_problem(slot: ModelSlot, problem: str | None) -> None:
        # Logged when it appears, not at every poll.
        if problem is not None and problem != slot.problem:
            logger.warning(problem)
        slot.problem = problem

    async def _report_availability(self, slot: ModelSlot) -> None:
        available = bool(slot.serving)
        if available == slot.available:
            return
        slot.available = available
        if self._on_availability_change is not None:
            await self._on_availability_change(slot.name, available)
