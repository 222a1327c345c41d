"""The gateway in front of a real model server serving the trained classifier."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from servers import Stack
from sklearn.datasets import load_wine
from status_assertions import expect_status

from services.generated.gateway.v1 import gateway_pb2

pytestmark = pytest.mark.asyncio(loop_scope="session")

WINE = load_wine()
FEATURES = list(WINE.feature_names)


def ordered(*rows: np.ndarray) -> gateway_pb2.ClassifyRequest:
    request = gateway_pb2.ClassifyRequest()
    for row in rows:
        request.samples.add().ordered.values.extend(row.tolist())
    return request


async def test_classify_matches_the_saved_model(
    shared_stack: Stack, classifier_models_dir: Path
) -> None:
    response = await shared_stack.stub.Classify(ordered(*WINE.data), timeout=10)

    exported = tf.saved_model.load(str(classifier_models_dir / "classifier" / "1"))
    expected = exported.signatures["serving_default"](features=tf.constant(WINE.data, tf.float32))
    probabilities = np.array([c.probabilities for c in response.classifications])
    np.testing.assert_allclose(probabilities, expected["probabilities"].numpy(), atol=1e-6)
    class_ids = [c.class_id for c in response.classifications]
    assert class_ids == expected["class_ids"].numpy().tolist()
    assert list(response.class_names) == list(WINE.target_names)
    assert [c.class_name for c in response.classifications] == [
        WINE.target_names[i] for i in class_ids
    ]
    assert np.mean(np.array(class_ids) == WINE.target) > 0.9
    assert response.model == gateway_pb2.ModelVersionRef(name="classifier", version=1)


async def test_named_features_give_the_same_answer_as_ordered(shared_stack: Stack) -> None:
    row = WINE.data[100]
    named = gateway_pb2.ClassifyRequest()
    named.samples.add().named.values.update(dict(zip(FEATURES, row.tolist(), strict=True)))
    by_name = await shared_stack.stub.Classify(named, timeout=10)
    in_order = await shared_stack.stub.Classify(ordered(row), timeout=10)
    assert by_name.classifications == in_order.classifications


async def test_pinned_version(shared_stack: Stack) -> None:
    request = ordered(WINE.data[0])
    request.model_version = 1
    response = await shared_stack.stub.Classify(request, timeout=10)
    assert response.model.version == 1
    request.model_version = 99
    await expect_status(
        shared_stack.stub.Classify(request, timeout=10),
        grpc.StatusCode.NOT_FOUND,
        "model classifier version 99",
    )


def _with_value(index: int, value: float) -> gateway_pb2.ClassifyRequest:
    row = WINE.data[0].copy()
    row[index] = value
    return ordered(WINE.data[1], row)


@pytest.mark.parametrize(
    ("request_", "field", "reason"),
    [
        (gateway_pb2.ClassifyRequest(), "samples", "at least one sample"),
        (ordered(WINE.data[0][:12]), "samples[0].ordered.values", "expected 13 values"),
        (
            ordered(WINE.data[0], np.append(WINE.data[1], 1.0)),
            "samples[1].ordered.values",
            "got 14",
        ),
        (_with_value(3, math.nan), "samples[1].ordered.values[3]", "finite"),
        (_with_value(0, math.inf), "samples[1].ordered.values[0]", "finite"),
        (
            gateway_pb2.ClassifyRequest(samples=[gateway_pb2.WineSample()]),
            "samples[0]",
            "set either named or ordered",
        ),
    ],
    ids=["empty", "too-few", "too-many", "nan", "inf", "no-features"],
)
async def test_bad_input_is_invalid_argument_naming_the_field(
    shared_stack: Stack, request_: gateway_pb2.ClassifyRequest, field: str, reason: str
) -> None:
    await expect_status(
        shared_stack.stub.Classify(request_, timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT,
        f"{field}: ",
        reason,
    )


async def test_unknown_and_missing_feature_names(shared_stack: Stack) -> None:
    values = dict(zip(FEATURES, WINE.data[0].tolist(), strict=True))
    values["colour"] = 1.0
    request = gateway_pb2.ClassifyRequest()
    request.samples.add().named.values.update(values)
    await expect_status(
        shared_stack.stub.Classify(request, timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT,
        'samples[0].named.values["colour"]',
        "unknown feature",
        "alcohol",
    )
    del request.samples[0].named.values["colour"]
    del request.samples[0].named.values["proline"]
    await expect_status(
        shared_stack.stub.Classify(request, timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT,
        "samples[0].named.values: missing features: proline",
    )


async def test_batch_limit(shared_stack: Stack) -> None:
    request = ordered(*np.repeat(WINE.data[:1], 1025, axis=0))
    await expect_status(
        shared_stack.stub.Classify(request, timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT,
        "samples: at most 1024 samples per request; got 1025",
    )


async def test_list_models(shared_stack: Stack) -> None:
    response = await shared_stack.stub.ListModels(gateway_pb2.ListModelsRequest(), timeout=10)
    available = gateway_pb2.ModelVersionStatus(
        version=1, state=gateway_pb2.MODEL_VERSION_STATE_AVAILABLE
    )
    assert response == gateway_pb2.ListModelsResponse(
        models=[
            gateway_pb2.ModelInfo(name=name, rpc=rpc, serving_version=1, versions=[available])
            for name, rpc in [
                ("autoencoder", "Encode"),
                ("classifier", "Classify"),
                ("cnn", "RecognizeDigits"),
                ("forecaster", "Forecast"),
                ("word2vec", "SimilarWords"),
            ]
        ]
    )


async def test_health_and_reflection(shared_stack: Stack) -> None:
    health = health_pb2_grpc.HealthStub(shared_stack.channel)
    for service in ("", "gateway.v1.GatewayService"):
        # Watch sends the status now, then each change: SERVING once the backend answered.
        watch = health.Watch(health_pb2.HealthCheckRequest(service=service), timeout=10)
        async for answer in watch:
            if answer.status == health_pb2.HealthCheckResponse.SERVING:
                break
        watch.cancel()

    def reflected_services() -> list[str]:
        with grpc.insecure_channel(f"localhost:{shared_stack.gateway.port}") as channel:
            return list(ProtoReflectionDescriptorDatabase(channel).get_services())

    assert "gateway.v1.GatewayService" in await asyncio.to_thread(reflected_services)


async def test_each_classify_is_timed_per_stage(shared_stack: Stack) -> None:
    registry = shared_stack.gateway.metrics.registry

    def counts() -> dict[str, float]:
        return {
            stage: registry.get_sample_value(
                "gateway_stage_seconds_count", {"model": "classifier", "stage": stage}
            )
            or 0.0
            for stage in ("preprocess", "predict", "postprocess")
        }

    before = counts()
    await shared_stack.stub.Classify(ordered(WINE.data[0]), timeout=10)
    after = counts()
    assert {stage: after[stage] - before[stage] for stage in after} == {
        "preprocess": 1,
        "predict": 1,
        "postprocess": 1,
    }
