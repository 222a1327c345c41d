"""The REST API refuses a body over its limit with 413 and TensorFlow Serving's error JSON,
before parsing any of it, and keeps serving."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from servers import start_model_server_for

from benchmarks.stack import free_port
from services.modelserver import rest

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_an_oversize_body_gets_413_and_the_server_keeps_serving(
    classifier_repository: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rest, "MAX_BODY_BYTES", 4096)  # 256 MiB in production
    server = await start_model_server_for(classifier_repository, rest_api_port=free_port())
    try:
        async with aiohttp.ClientSession(f"http://localhost:{server.rest_port}") as http:
            oversize = b'{"instances": [' + b"1.0," * 2000 + b"1.0]}"
            async with http.post("/v1/models/classifier:predict", data=oversize) as response:
                assert response.status == 413
                assert (await response.json()) == {
                    "error": "Request body is larger than 4096 bytes"
                }
            async with http.get("/v1/models/classifier") as response:
                assert response.status == 200
    finally:
        await server.stop(0)
