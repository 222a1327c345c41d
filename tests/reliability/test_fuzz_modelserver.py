"""Bad input, generated, against the model server's gRPC and REST APIs: malformed TensorProtos,
wrong dtypes, mismatched shapes, mutated request bytes on the wire and malformed JSON get a client
error with a message, never INTERNAL or UNKNOWN (HTTP 500), and the server stays healthy with the
same memory."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from conftest import count_case
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2,
    predict_pb2,
    prediction_service_pb2,
    prediction_service_pb2_grpc,
)
from wire import Mutated, mutations, rpcs, send_mutated, serialized

from benchmarks.stack import ServingStack, memory_mib

pytestmark = pytest.mark.integration
settings.load_profile("reliability")

# TensorFlow Serving answers a bad request with these (FAILED_PRECONDITION: no such signature).
CLIENT_ERRORS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.UNIMPLEMENTED,
}
# `make reliability` asks for more cases than `make test` has time for.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
MEMORY_SLACK_MIB = 60
MODELS = ["classifier", "cnn", "forecaster", "word2vec", "autoencoder", "", "nope",
          "../classifier", "/etc/passwd", "classifier/1", "%2e%2e"]  # fmt: skip
SIGNATURES = ["", "serving_default", "step", "prime", "window", "similar", "analogy", "metadata",
              "encode", "__saved_model_init_op", "x"]  # fmt: skip
INPUTS = ["features", "images", "history", "count", "state", "value", "window", "words", "k",
          "positive", "negative", "rows", "x", ""]  # fmt: skip

shapes = st.builds(
    lambda dims, unknown: tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in dims],
        unknown_rank=unknown,
    ),
    st.lists(st.integers(-3, 2**40) | st.integers(0, 40), max_size=5),
    st.booleans(),
)
tensors = st.builds(
    lambda dtype, shape, content, floats, ints, strings: tensor_pb2.TensorProto(
        dtype=dtype,
        tensor_shape=shape,
        tensor_content=content,
        float_val=floats,
        int_val=ints,
        string_val=strings,
    ),
    st.sampled_from(list(types_pb2.DataType.values())) | st.integers(-2, 500),
    shapes,
    st.binary(max_size=4096),
    st.lists(st.floats(width=32), max_size=50),
    st.lists(st.integers(-(2**31), 2**31 - 1), max_size=50),
    st.lists(st.binary(max_size=40), max_size=10),
)
predicts = st.builds(
    lambda model, version, signature, inputs, output_filter: _predict(
        model, version, signature, inputs, output_filter
    ),
    st.sampled_from(MODELS),
    st.integers(-1, 5),
    st.sampled_from(SIGNATURES),
    st.dictionaries(st.sampled_from(INPUTS), tensors, max_size=4),
    st.lists(st.sampled_from(["probabilities", "class_ids", "x", "state"]), max_size=3),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=10), children, max_size=6)
    ),
    max_leaves=30,
)
bodies = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda v: json.dumps(v).encode(), json_values),
    st.builds(lambda instances: json.dumps({"instances": instances}).encode(), json_values),
    st.builds(
        lambda inputs, name: json.dumps({"inputs": inputs, "signature_name": name}).encode(),
        json_values,
        st.sampled_from(SIGNATURES),
    ),
)
paths = st.sampled_from(
    [f"/v1/models/{model}{suffix}" for model in MODELS for suffix in (":predict", ":classify",
     ":regress", "/versions/1:predict", "/labels/stable:predict", "/versions/x:predict")]
)  # fmt: skip


model_specs = st.builds(
    lambda name, version, signature: _model_spec(name, version, signature),
    st.sampled_from(MODELS),
    st.integers(-1, 5),
    st.sampled_from(SIGNATURES),
)
# The RPCs whose bytes are mutated on the wire, and what their bytes are mutated from.
RPCS = {
    **rpcs(prediction_service_pb2.DESCRIPTOR.services_by_name["PredictionService"]),
    **rpcs(model_service_pb2.DESCRIPTOR.services_by_name["ModelService"]),
}
wire_requests: dict[str, st.SearchStrategy[Any]] = {
    "Predict": predicts,
    "GetModelMetadata": st.builds(
        lambda spec, fields: get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=spec, metadata_field=fields
        ),
        model_specs,
        st.lists(st.sampled_from(["signature_def", "", "x"]), max_size=2),
    ),
    "GetModelStatus": st.builds(
        lambda spec: get_model_status_pb2.GetModelStatusRequest(model_spec=spec), model_specs
    ),
}


def _model_spec(name: str, version: int, signature: str) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=name, signature_name=signature)
    if version >= 0:
        spec.version.value = version
    return spec


def _predict(
    model: str, version: int, signature: str, inputs: dict[str, Any], output_filter: list[str]
) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(output_filter=output_filter)
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version >= 0:
        request.model_spec.version.value = version
    for name, tensor in inputs.items():
        request.inputs[name].CopyFrom(tensor)
    return request


@pytest.fixture(scope="module")
def prediction(
    deployed: ServingStack,
) -> Iterator[prediction_service_pb2_grpc.PredictionServiceStub]:
    with grpc.insecure_channel(f"localhost:{deployed.model_server.port}") as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def test_predict_refuses_malformed_tensors_with_a_client_error(
    prediction: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    @settings(max_examples=EXAMPLES)
    @given(request=predicts)
    def fuzz(request: predict_pb2.PredictRequest) -> None:
        count_case("model server Predict")
        try:
            prediction.Predict(request, timeout=30)
        except grpc.RpcError as error:
            assert error.code() in CLIENT_ERRORS, f"{error.code()}: {error.details()}"
            assert error.details()

    fuzz()


@pytest.mark.parametrize("rpc", sorted(wire_requests))
def test_mutated_request_bytes_get_a_client_error(rpc: str, deployed: ServingStack) -> None:
    @settings(max_examples=EXAMPLES)
    @given(mutated=serialized(wire_requests[rpc]).flatmap(mutations))
    def fuzz(mutated: Mutated) -> None:
        count_case(f"model server {rpc} bytes")
        send_mutated(channel, RPCS[rpc], mutated, CLIENT_ERRORS)

    with grpc.insecure_channel(f"localhost:{deployed.model_server.port}") as channel:
        fuzz()


def test_the_rest_api_refuses_malformed_json_with_a_client_error(deployed: ServingStack) -> None:
    port = deployed.model_server.rest_port
    assert port is not None

    @settings(max_examples=EXAMPLES)
    @given(path=paths, body=bodies)
    @example(path="/v1/models/classifier:predict", body=b"\x80")  # not UTF-8
    def fuzz(path: str, body: bytes) -> None:
        count_case("model server REST")
        connection = http.client.HTTPConnection("localhost", port, timeout=30)
        try:
            connection.request(
                "POST", path, body=body, headers={"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            answer = response.read()
        finally:
            connection.close()
        assert response.status < 500, f"{path} {body[:100]!r}: {response.status} {answer[:300]!r}"
        if response.status >= 400:
            assert json.loads(answer)["error"]

    fuzz()


def test_the_model_server_keeps_its_memory_after_fuzzing(
    deployed: ServingStack, prediction: prediction_service_pb2_grpc.PredictionServiceStub
) -> None:
    # Runs after the fuzzing above (file order): another round must not grow memory.
    pid = deployed.model_server.child.pid
    before = memory_mib(pid, "VmRSS")

    @settings(max_examples=100)
    @given(request=predicts)
    def again(request: predict_pb2.PredictRequest) -> None:
        with contextlib.suppress(grpc.RpcError):
            prediction.Predict(request, timeout=30)

    again()
    after = memory_mib(pid, "VmRSS")
    assert after - before < MEMORY_SLACK_MIB, f"RSS grew from {before:.0f} to {after:.0f} MiB"
