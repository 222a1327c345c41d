"""Which version of each model the gateway routes to, and what each version needs on the side.

Every model-server replica's GetModelStatus is polled in the background; the serving version is
the newest version AVAILABLE on all of them (services/gateway/fleet.py). Before the catalog
switches to a new version it prepares it (for example, reads its feature names), so requests
never wait for that and never see a half-known version. Requests are pinned to the serving
version, so every answer is computed, pre- and post-processed with the parameters of one and the
same version, also while a new version rolls out. A status check that fails or is slow changes
nothing: the last answers stand until replicas answer again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from services.common.bounded import shorten
from services.gateway import errors
from services.gateway.backend import ModelServerClient, VersionStatus
from services.gateway.domain import Deadline
from services.gateway.fleet import FleetView
from services.gateway.signatures import Signature

log = logging.getLogger(__name__)

T = TypeVar("T")
VersionLoader = Callable[[int, Deadline], Awaitable[T]]


class VersionedCache(Generic[T]):
    """Per-version values loaded once (concurrent first requests share one load)."""

    def __init__(self, load: VersionLoader[T], keep: int = 4) -> None:
        self._load = load
        self._keep = keep
        self._tasks: dict[int, asyncio.Task[T]] = {}

    async def get(self, version: int, deadline: Deadline) -> T:
        task = self._tasks.get(version)
        if task is not None and task.done() and task.exception() is None:
            return task.result()  # loaded: the common case needs no shield
        if task is None or (task.done() and task.exception() is not None):
            task = asyncio.ensure_future(self._load(version, deadline))
            self._tasks[version] = task
            self._evict()
        return await asyncio.shield(task)

    def _evict(self) -> None:
        for version in sorted(self._tasks)[: -self._keep]:
            del self._tasks[version]


@dataclass(frozen=True)
class ModelEndpoint:
    """A model behind the gateway and the public RPC that serves it."""

    name: str
    rpc: str
    # Prepares a version before it becomes the serving one, e.g. warms its schema cache.
    prepare: VersionLoader[object] | None = None


@dataclass
class ModelState:
    """What the gateway knows about one model right now."""

    endpoint: ModelEndpoint
    serving_version: int | None = None
    versions: list[VersionStatus] = field(default_factory=list)
    fleet: FleetView = field(default_factory=FleetView)
    checks_failing: bool = False  # the last status check failed: logged once, not every time


class ModelCatalog:
    """Tracks the serving version of every model behind the gateway."""

    def __init__(
        self, backend: ModelServerClient, timeout_s: float, unserved_note: str = ""
    ) -> None:
        self._backend = backend
        self._timeout_s = timeout_s
        self._unserved_note = unserved_note  # why a model may have no version yet
        self._states: dict[str, ModelState] = {}
        self._refresh_locks: dict[str, asyncio.Lock] = {}
        backend.holders = self._holders

    def add(self, endpoint: ModelEndpoint) -> None:
        """Puts a model behind the gateway."""
        self._states[endpoint.name] = ModelState(endpoint)
        self._refresh_locks[endpoint.name] = asyncio.Lock()

    async def serving_version(self, model: str, deadline: Deadline) -> int:
        """The version unpinned requests go to; asks the model server if none is known yet."""
        state = self._states[model]
        if state.serving_version is None:
            await self.refresh_model(model, deadline)
        if state.serving_version is None:
            note = f": {self._unserved_note}" if self._unserved_note else ""
            raise errors.ModelNotReady(f"model {model} has no available version yet{note}")
        return state.serving_version

    async def on_version(
        self,
        model: str,
        pinned: int | None,
        deadline: Deadline,
        call: Callable[[int], Awaitable[T]],
    ) -> T:
        """Runs ``call`` with the pinned version, or with the serving one when none is pinned.

        If the serving version was unloaded since the last refresh (a rollout), the call is
        retried once on the version that replaced it.
        """
        if pinned is not None:
            return await call(pinned)
        serving = await self.serving_version(model, deadline)
        try:
            return await call(serving)
        except errors.ModelNotFound:
            await self.refresh_model(model, deadline)
            newer = await self.serving_version(model, deadline)
            if newer == serving:
                raise
            return await call(newer)

    async def refresh_model(self, model: str, deadline: Deadline | None = None) -> None:
        """Asks every replica for the model's versions and switches to the newest that all of
        them hold. Raises why when no replica answered; what was known stands."""
        deadline = deadline or Deadline.after(self._timeout_s)
        state = self._states[model]
        async with self._refresh_locks[model]:
            answers = await self._backend.replica_version_statuses(model, deadline)
            fleet = state.fleet
            fleet.keep_only(set(answers))
            failures = []
            for address, answer in answers.items():
                if isinstance(answer, errors.GatewayError):
                    fleet.failed(address)
                    failures.append(answer)
                else:
                    fleet.answered(address, answer)
            if failures and len(failures) == len(answers):
                raise failures[0]  # no replica answered: what was known stands
            newest = fleet.choose_serving_version()
            if newest is not None and newest != state.serving_version:
                await self._prepare(state, newest, deadline)
                log.info(
                    "model %s: serving version %s (was %s)", model, newest, state.serving_version
                )
            state.versions = fleet.statuses()
            state.serving_version = newest

    async def refresh_all(self) -> bool:
        """Follows the replicas and refreshes every model at once, so one slow check delays
        no other; False when no replica answered for any model. A model whose check fails
        keeps its serving version."""
        await self._backend.refresh_replicas()
        answered = await asyncio.gather(*(self._refresh_logged(model) for model in self._states))
        return any(answered)

    async def _refresh_logged(self, model: str) -> bool:
        state = self._states[model]
        try:
            await self.refresh_model(model)
        except errors.GatewayError as exc:
            if not state.checks_failing:
                kept = (
                    ""
                    if state.serving_version is None
                    else f"; still serving version {state.serving_version}"
                )
                log.warning("model %s: status checks fail (%s)%s", model, exc.message, kept)
            state.checks_failing = True
            return False
        state.checks_failing = False
        return True

    async def state(self, model: str, deadline: Deadline) -> ModelState:
        """Fresh state of one model; ModelNotFound when the gateway does not front it. A model
        the model server has not loaded has no versions; an unreachable one raises."""
        state = self._states.get(model)
        if state is None:
            fronted = ", ".join(sorted(self._states))
            raise errors.ModelNotFound(
                f"no model named {shorten(model)!r}; the gateway fronts {fronted}"
            )
        await self.refresh_model(model, deadline)
        return state

    async def describe(self, model: str, deadline: Deadline) -> tuple[ModelState, list[Signature]]:
        """Fresh state of one model, as `state`, and the signatures of its serving version
        (none while no version serves)."""
        state = await self.state(model, deadline)
        if state.serving_version is None:
            return state, []
        signatures = await self._backend.signatures(
            state.endpoint.name, state.serving_version, deadline
        )
        return state, list(signatures.values())

    async def states(self, deadline: Deadline) -> list[ModelState]:
        """Fresh state of every model, sorted by name."""
        return [await self.state(name, deadline) for name in sorted(self._states)]

    def _holders(self, model: str, version: int) -> list[str]:
        state = self._states.get(model)
        return [] if state is None else state.fleet.holders(version)

    async def _prepare(self, state: ModelState, version: int, deadline: Deadline) -> None:
        if state.endpoint.prepare is None:
            return
        try:
            await state.endpoint.prepare(version, deadline)
        except errors.ModelContractError as exc:
            # Switch anyway: requests then fail with a clear message instead of hitting an old
            # version the model server may already have unloaded.
            log.error("model %s version %s: %s", state.endpoint.name, version, exc.message)
