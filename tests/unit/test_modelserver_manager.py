"""The model manager's version life cycle, with a stand-in loader instead of TensorFlow."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from tensorflow_serving.apis import get_model_metadata_pb2

from services.modelserver.config import ModelDefinition, VersionPolicy
from services.modelserver.errors import NotFoundError
from services.modelserver.manager import ModelManager
from services.modelserver.servable import Servable, ServableLoadError
from services.modelserver.versions import ServableRequest, VersionState

DATA_LOSS = 15


class FakeLoader:
    """Loads any version directory instantly, except those marked broken."""

    def __init__(self, broken: set[int] | None = None) -> None:
        self.broken = broken or set()
        self.calls: list[int] = []

    def __call__(self, name: str, version: int, path: Path) -> Servable:
        self.calls.append(version)
        if version in self.broken:
            raise ServableLoadError(DATA_LOSS, f"Can't parse {path}/saved_model.pb")
        return Servable(name, version, path, get_model_metadata_pb2.SignatureDefMap(), None)


def manager_for(
    base_path: Path,
    loader: FakeLoader,
    policy: VersionPolicy | None = None,
    retries: int = 0,
    retry_interval_s: float = 0.0,
    availability: list[tuple[str, bool]] | None = None,
) -> ModelManager:
    async def record(name: str, available: bool) -> None:
        if availability is not None:
            availability.append((name, available))

    return ModelManager(
        [ModelDefinition("m", base_path, policy or VersionPolicy())],
        poll_wait_seconds=0,
        max_num_load_retries=retries,
        load_retry_interval_seconds=retry_interval_s,
        loader=loader,
        on_availability_change=record,
        settle_seconds=0,  # the stand-in versions are empty directories, whole at once
    )


def states(manager: ModelManager) -> dict[int, str]:
    return {v: s.state.name for v, s in manager.version_statuses("m").items()}


def latest(manager: ModelManager) -> int:
    return manager.servable(ServableRequest("m")).version


async def test_new_version_replaces_the_old_once_loaded(tmp_path: Path) -> None:
    availability: list[tuple[str, bool]] = []
    manager = manager_for(tmp_path, FakeLoader(), availability=availability)
    (tmp_path / "1").mkdir()
    await manager.sync_once()
    assert latest(manager) == 1
    (tmp_path / "2").mkdir()
    await manager.sync_once()
    assert latest(manager) == 2
    assert states(manager) == {2: "AVAILABLE", 1: "END"}
    with pytest.raises(NotFoundError, match=r"Specific\(m, 1\)"):
        manager.servable(ServableRequest("m", 1))
    assert availability == [("m", True)]


async def test_failed_version_leaves_the_serving_one_and_is_not_retried(tmp_path: Path) -> None:
    loader = FakeLoader(broken={2})
    manager = manager_for(tmp_path, loader, retries=2)
    (tmp_path / "1").mkdir()
    await manager.sync_once()
    (tmp_path / "2").mkdir()
    await manager.sync_once()
    await manager.sync_once()

    assert latest(manager) == 1
    status = manager.version_statuses("m")[2]
    assert (status.state, status.error_code) == (VersionState.END, DATA_LOSS)
    assert loader.calls == [1, 2, 2, 2]  # three attempts, none on the next poll


async def test_a_failed_version_is_retried_once_its_files_change(tmp_path: Path) -> None:
    loader = FakeLoader(broken={2})
    manager = manager_for(tmp_path, loader)
    (tmp_path / "1").mkdir()
    await manager.sync_once()
    (tmp_path / "2").mkdir()
    await manager.sync_once()
    await manager.sync_once()  # unchanged since it failed: not retried
    assert latest(manager) == 1
    # The rest of the version arrives (a copy that was not finished), and now it loads.
    loader.broken.clear()
    (tmp_path / "2" / "saved_model.pb").write_bytes(b"the missing part")
    await manager.sync_once()
    assert latest(manager) == 2
    assert loader.calls == [1, 2, 2]


async def test_a_version_still_being_written_waits_until_it_is_whole(tmp_path: Path) -> None:
    loader = FakeLoader()
    manager = ModelManager(
        [ModelDefinition("m", tmp_path, VersionPolicy())],
        poll_wait_seconds=0,
        loader=loader,
        settle_seconds=0.3,
    )
    version = tmp_path / "1"
    version.mkdir()
    (version / "saved_model.pb").write_bytes(b"half")
    await manager.sync_once(settle_attempts=0)  # one poll, just after the write
    assert loader.calls == []
    assert manager.version_statuses("m") == {}
    await manager.sync_once()  # waits for the files to be quiet, then loads
    assert loader.calls == [1]
    assert latest(manager) == 1


async def test_retries_stop_once_a_newer_version_supersedes(tmp_path: Path) -> None:
    loader = FakeLoader(broken={2})
    manager = manager_for(tmp_path, loader, retries=100, retry_interval_s=0.01)
    (tmp_path / "2").mkdir()
    sync = asyncio.create_task(manager.sync_once())
    await asyncio.sleep(0.05)
    (tmp_path / "3").mkdir()
    await asyncio.wait_for(sync, timeout=5)
    await manager.sync_once()

    assert latest(manager) == 3
    assert loader.calls.count(2) < 100


async def test_policy_all_unloads_versions_removed_from_disk(tmp_path: Path) -> None:
    availability: list[tuple[str, bool]] = []
    manager = manager_for(
        tmp_path, FakeLoader(), VersionPolicy(kind="all"), availability=availability
    )
    for version in ("1", "2"):
        (tmp_path / version).mkdir()
    await manager.sync_once()
    assert states(manager) == {2: "AVAILABLE", 1: "AVAILABLE"}

    (tmp_path / "2").rmdir()
    await manager.sync_once()
    assert states(manager) == {2: "END", 1: "AVAILABLE"}
    (tmp_path / "1").rmdir()
    await manager.sync_once()
    assert not manager.is_available("m")
    assert availability == [("m", True), ("m", False)]


async def test_missing_base_path_keeps_what_serves(tmp_path: Path) -> None:
    manager = manager_for(tmp_path / "m", FakeLoader())
    await manager.sync_once()
    assert manager.version_statuses("m") == {}
    (tmp_path / "m" / "7").mkdir(parents=True)
    await manager.sync_once()
    (tmp_path / "m" / "7").rmdir()
    (tmp_path / "m").rmdir()
    await manager.sync_once()
    assert latest(manager) == 7


class SlowLoader(FakeLoader):
    """Takes a moment to load, as a real SavedModel does, so that reconciles can overlap."""

    def __call__(self, name: str, version: int, path: Path) -> Servable:
        time.sleep(0.2)
        return super().__call__(name, version, path)


async def test_a_reload_and_a_poll_at_once_load_a_version_once(tmp_path: Path) -> None:
    loader = SlowLoader()
    manager = manager_for(tmp_path, loader)
    (tmp_path / "1").mkdir()
    # The model's poll and a config reload naming the same model reconcile it together; each
    # waits for the other, so the second finds version 1 serving instead of loading it again.
    await asyncio.gather(
        manager.sync_once(), manager.reload([ModelDefinition("m", tmp_path, VersionPolicy())])
    )
    assert loader.calls == [1]
    assert states(manager) == {1: "AVAILABLE"}
