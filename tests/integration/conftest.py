"""Fixtures: trained-classifier repositories and running stacks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from servers import Stack, start_stack

BATCHING_PARAMETERS = """
max_batch_size { value: 256 }
batch_timeout_micros { value: 1000 }
max_enqueued_batches { value: 100 }
num_batch_threads { value: 2 }
"""


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=["plain", "batching"])
async def shared_stack(
    request: pytest.FixtureRequest, full_models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """One stack serving all five models, for tests that only read; tests that change things
    start their own. Every test using it runs twice: against a plain model server, and against
    one with TensorFlow Serving's batching on, which every model contract must survive."""
    settings: dict[str, Any] = {}
    if request.param == "batching":
        parameters = tmp_path_factory.mktemp("batching") / "batching.config"
        parameters.write_text(BATCHING_PARAMETERS)
        settings = {"enable_batching": True, "batching_parameters_file": str(parameters)}
    stack = await start_stack(full_models_dir, **settings)
    yield stack
    await stack.close()


@pytest_asyncio.fixture(loop_scope="session")
async def private_stack(classifier_repository: Path) -> AsyncIterator[Stack]:
    """A stack of its own, for tests that publish versions or stop servers."""
    stack = await start_stack(classifier_repository)
    yield stack
    await stack.close()
