"""`make run` with one model trained and one not: the suite serves the first at once, answers
calls to the other UNAVAILABLE while it trains, then serves it without a restart, printing
no more than a line per service and per model on the way."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import grpc
import pytest
from suite_process import GATEWAY_LINE, SuiteProcess

from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.suite.model_config import CONFIG_FILE_NAME

pytestmark = pytest.mark.asyncio(loop_scope="session")

START_TIMEOUT_S = 120.0
TRAINING_TIMEOUT_S = 240.0
WINE_ROW_0 = [14.23, 1.71, 2.43, 15.6, 127, 2.8, 3.06, 0.28, 2.29, 5.64, 1.04, 3.92, 1065]


async def test_a_model_that_trains_while_the_suite_serves_joins_when_published(
    classifier_models_dir: Path, tmp_path: Path
) -> None:
    models_dir = tmp_path / "models"
    shutil.copytree(classifier_models_dir / "classifier", models_dir / "classifier")
    suite = await SuiteProcess.start(
        models_dir,
        "--models=classifier,word2vec",
        "--modelserver_port=0",
        "--modelserver_rest_port=0",
        "--gateway_port=0",
        "--metrics_port=0",
        "--poll_s=0.2",
        cwd=tmp_path,  # training writes its reports under ./reports
    )
    try:
        port = int((await suite.wait_for(GATEWAY_LINE, START_TIMEOUT_S)).group(1))
        banner_end = len(suite.lines)
        async with grpc.aio.insecure_channel(f"localhost:{port}") as channel:
            stub = gateway_pb2_grpc.GatewayServiceStub(channel)
            request = gateway_pb2.ClassifyRequest()
            request.samples.add().ordered.values.extend(WINE_ROW_0)
            answer = await stub.Classify(request, timeout=30)
            assert answer.model.name == "classifier"

            # Training a word2vec takes seconds; the first call comes before it ends.
            similar = gateway_pb2.SimilarWordsRequest(word="king", k=3)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.SimilarWords(similar, timeout=30)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "model word2vec has no available version yet: make run is still training it" in (
                refused.value.details() or ""
            )
            assert not any("[1/1] word2vec" in line for line in suite.lines[:banner_end])

            await suite.wait_for(r"^word2vec is served$", TRAINING_TIMEOUT_S, after=banner_end)
            for _ in range(50):  # the gateway learns of it at its next refresh (0.2 s)
                try:
                    neighbours = await stub.SimilarWords(similar, timeout=30)
                    break
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
                    await asyncio.sleep(0.2)
            else:
                raise AssertionError("word2vec was not served once published")
            assert len(neighbours.neighbors) == 3
    finally:
        exit_code = await suite.stop()
    assert exit_code == 0, suite.output
    # Quiet by default: a line per service as it comes up, none per load or version switch.
    assert sum(line.startswith("model server is up (pid ") for line in suite.lines) == 1
    assert sum(line.startswith("gateway is up (pid ") for line in suite.lines) == 1
    assert not [line for line in suite.lines if " INFO " in line], suite.output
    # A model server restarted later reads both models from its config file.
    config = (models_dir / CONFIG_FILE_NAME).read_text()
    assert 'name: "classifier"' in config and 'name: "word2vec"' in config
