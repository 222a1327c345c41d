"""What each stage of the gateway's hot path costs, measured in-process with the gateway's own
functions: `Classify` of one wine row and `RecognizeDigits` of one 56x56 PNG, as in the overhead
comparison (benchmarks/gateway_overhead.py).

Each stage runs alone in a timed loop of many calls (as timeit does), in several repetitions;
the repetitions take turns over the stages, so that the machine drifting during the run weighs
on every stage alike, and each stage's cost is the median over them of CPU time
(`time.process_time`, every thread of this process) and wall time per call. The handler layers
are measured end to end instead: a trivial grpc.aio handler in this process, called by a client
in this process with one call outstanding, with the gateway's layers and without, in alternating
repetitions; their cost is the median of the differences within a repetition.

python -m benchmarks.stages [--repetitions 5] [--calls 2000] [--round-trips 600]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import io
import logging
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
from sklearn.datasets import load_wine

from benchmarks.gateway_overhead import _digit_png
from services.common.layers import Layered
from services.common.shutdown import ShutdownGate
from services.gateway.backend import predict_request
from services.gateway.classifier import ClassifierSchema, ClassifyResult
from services.gateway.digits import ImageLimits, open_encoded, prepare_encoded
from services.gateway.domain import ModelVersion
from services.gateway.logs import current_request_id, log_handler, request_id_from
from services.gateway.metrics import GatewayMetrics
from services.gateway.recognizer import DigitsResult
from services.gateway.server import handler_layers
from services.gateway.signatures import Signature, TensorSpec
from services.gateway.tensors import from_tensor_proto, to_tensor_proto
from services.gateway.transport import converters
from services.gateway.transport.rpc_layer import access_log
from services.generated.gateway.v1 import gateway_pb2
from services.generated.tfserving.v1 import predict_pb2
from training.contracts import classifier, cnn
from training.contracts.common import IMAGE_SIZE

WORKLOADS = ("Classify", "RecognizeDigits")
# Each stage by its name in the report, with what is timed (for the report's table).
STAGES: dict[str, str] = {
    "request decoding": "`ClassifyRequest` / `RecognizeDigitsRequest.FromString`, then "
    "`converters.wine_samples` / `converters.images`",
    "validation": "`ClassifierSchema.to_matrix` (13 features, 3 classes) / "
    "`Signature.check_inputs` of the prepared batch",
    "digit preparation": "`digits.prepare_encoded`: header, decode, crop, fit, centre",
    "header check": "`digits.open_encoded` alone: part of the row above (images.py reads every "
    "header first, and decodes a few small pictures from the headers it read)",
    "thread hand-off": "`await asyncio.to_thread(noop)`: images.py's hand-off, for pictures "
    "over its inline limits only; one 56x56 digit is prepared on the event loop",
    "Predict request": "`backend.predict_request`, the `PredictRequest` the backend sends, "
    "then `SerializeToString`",
    "Predict response, typed fields": "`PredictResponse.FromString` and "
    "`tensors.from_tensor_proto` of each output, in `float_val` / `int64_val` (what the model "
    "server sends)",
    "Predict response, tensor_content": "the same, the outputs in `tensor_content`",
    "response building": "`converters.classify_response` / `converters.digits_response` of a "
    "result, `SerializeToString`",
    "request id": "`logs.request_id_from` of metadata without an id (a fresh one)",
    "access-log line": "the access log's JSON line (`logs.log_handler`; written at DEBUG), to a "
    "stream that discards it",
    "metrics": "one call's Prometheus updates: request seconds, requests, backend calls, three "
    "stage timings (in flight is a count read when scraped)",
    "handler layers": "end to end, one outstanding: a trivial grpc.aio handler with the "
    "gateway's layers, minus the same without them",
}
REPETITIONS = 5
CALLS = 2000  # per repetition of a stage's timed loop
ROUND_TRIPS = 600  # per repetition of the end-to-end loops, with layers and without
# Each RPC's model, by the gateway's default name, and the signature the gateway calls.
_MODELS = {"Classify": classifier.MODEL_NAME, "RecognizeDigits": cnn.MODEL_NAME}
_SIGNATURES = {"Classify": classifier.SERVING_SIGNATURE, "RecognizeDigits": cnn.SERVING_SIGNATURE}
_VERSION = 1
# What grpc.aio shows a handler of this client's call, and of where it came from.
_CLIENT_METADATA = (("user-agent", f"grpc-python-asyncio/{grpc.__version__}"),)
_PEER = "ipv4:127.0.0.1:50000"


@dataclass(frozen=True)
class Cost:
    """Per call, in microseconds."""

    cpu_us: float
    wall_us: float


@dataclass(frozen=True)
class StageRow:
    stage: str  # a key of STAGES
    # By workload; a workload whose path has no such stage is absent.
    costs: Mapping[str, Cost]


@dataclass(frozen=True)
class StagesResults:
    repetitions: int
    calls: int
    round_trips: int
    rows: list[StageRow]
    # The round trip without the gateway's layers, client and server together, by workload.
    bare_round_trip: Mapping[str, Cost]


def layered_server(service: grpc.GenericRpcHandler[Any, Any]) -> grpc.aio.Server:
    """A server of ``service`` behind the gateway's handler layers (without a bearer token),
    wrapped as services/gateway/server.py wraps them."""
    server = grpc.aio.server()
    layers = handler_layers(GatewayMetrics(), ShutdownGate("gateway"), None)
    Layered(server, layers).add_generic_rpc_handlers((service,))
    return server


def bare_server(service: grpc.GenericRpcHandler[Any, Any]) -> grpc.aio.Server:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((service,))
    return server


async def run(
    repetitions: int = REPETITIONS, calls: int = CALLS, round_trips: int = ROUND_TRIPS
) -> StagesResults:
    workloads = {"Classify": _classify(), "RecognizeDigits": _recognize_digits()}
    with _access_log_discarded():
        timed = [
            (stage, rpc, call)
            for rpc, workload in workloads.items()
            for stage, call in workload.stages.items()
        ]
        measured = _median_costs([call for _, _, call in timed], repetitions, calls)
        costs: dict[str, dict[str, Cost]] = {stage: {} for stage in STAGES}
        for (stage, rpc, _), cost in zip(timed, measured, strict=True):
            costs[stage][rpc] = cost
        costs["thread hand-off"]["RecognizeDigits"] = await _hand_off(repetitions, calls)
        layers, bare = await _handler_layers(workloads, repetitions, round_trips)
        costs["handler layers"] = layers
    rows = [StageRow(stage, costs[stage]) for stage in STAGES]
    return StagesResults(repetitions, calls, round_trips, rows, bare)


@dataclass(frozen=True)
class _Workload:
    stages: dict[str, Callable[[], object]]
    request: bytes  # the gateway request and response, serialized, for the end-to-end loops
    response: bytes


def _classify() -> _Workload:
    wine = load_wine()
    request = gateway_pb2.ClassifyRequest()
    request.samples.add().ordered.values.extend(wine.data[0].astype(np.float32).tolist())
    request_bytes = request.SerializeToString()
    schema = ClassifierSchema(
        feature_names=tuple(str(name) for name in wine.feature_names),
        class_names=tuple(str(name) for name in wine.target_names),
    )
    samples = converters.wine_samples(request)
    features = schema.to_matrix(samples)
    result = ClassifyResult(
        class_ids=np.array([0], np.int64),
        probabilities=np.array([[0.91, 0.06, 0.03]], np.float32),
        class_names=schema.class_names,
        model=ModelVersion(classifier.MODEL_NAME, _VERSION),
    )
    outputs: dict[str, npt.NDArray[Any]] = {
        classifier.PROBABILITIES_OUTPUT: result.probabilities,
        classifier.CLASS_IDS_OUTPUT: result.class_ids,
    }
    stages: dict[str, Callable[[], object]] = {
        "request decoding": lambda: converters.wine_samples(
            gateway_pb2.ClassifyRequest.FromString(request_bytes)
        ),
        "validation": functools.partial(schema.to_matrix, samples),
        **_common_stages("Classify", classifier.FEATURES_INPUT, features, outputs),
        "response building": lambda: converters.classify_response(result).SerializeToString(),
    }
    return _Workload(
        stages, request_bytes, converters.classify_response(result).SerializeToString()
    )


def _recognize_digits() -> _Workload:
    png = _digit_png()
    request_bytes = gateway_pb2.RecognizeDigitsRequest(
        images=[gateway_pb2.Image(encoded=png)]
    ).SerializeToString()
    field = "images[0].encoded"
    batch = np.stack([prepare_encoded(png, field)])
    signature = Signature(
        cnn.SERVING_SIGNATURE,
        {cnn.IMAGES_INPUT: TensorSpec(cnn.IMAGES_INPUT, "float32", (-1, IMAGE_SIZE, IMAGE_SIZE))},
        {
            cnn.PROBABILITIES_OUTPUT: TensorSpec(
                cnn.PROBABILITIES_OUTPUT, "float32", (-1, cnn.N_DIGITS)
            ),
            cnn.DIGITS_OUTPUT: TensorSpec(cnn.DIGITS_OUTPUT, "int64", (-1,)),
        },
    )
    probabilities = np.full((1, cnn.N_DIGITS), 0.01, np.float32)
    probabilities[0, 7] = 0.91
    result = DigitsResult(
        digits=np.array([7], np.int64),
        probabilities=probabilities,
        model=ModelVersion(cnn.MODEL_NAME, _VERSION),
    )
    outputs: dict[str, npt.NDArray[Any]] = {
        cnn.PROBABILITIES_OUTPUT: result.probabilities,
        cnn.DIGITS_OUTPUT: result.digits,
    }
    stages: dict[str, Callable[[], object]] = {
        "request decoding": lambda: converters.images(
            gateway_pb2.RecognizeDigitsRequest.FromString(request_bytes).images
        ),
        "validation": functools.partial(
            signature.check_inputs, cnn.MODEL_NAME, {cnn.IMAGES_INPUT: batch}
        ),
        "digit preparation": functools.partial(prepare_encoded, png, field),
        "header check": functools.partial(_header_check, png, field, ImageLimits()),
        **_common_stages("RecognizeDigits", cnn.IMAGES_INPUT, batch, outputs),
        "response building": lambda: converters.digits_response(result).SerializeToString(),
    }
    return _Workload(stages, request_bytes, converters.digits_response(result).SerializeToString())


def _common_stages(
    rpc: str, input_name: str, array: npt.NDArray[Any], outputs: Mapping[str, npt.NDArray[Any]]
) -> dict[str, Callable[[], object]]:
    model, signature = _MODELS[rpc], _SIGNATURES[rpc]
    typed = _predict_response(model, signature, outputs, typed=True)
    content = _predict_response(model, signature, outputs, typed=False)
    return {
        "Predict request": functools.partial(_predict_request, model, signature, input_name, array),
        "Predict response, typed fields": functools.partial(_parse_predict_response, typed),
        "Predict response, tensor_content": functools.partial(_parse_predict_response, content),
        "request id": functools.partial(request_id_from, _CLIENT_METADATA),
        "access-log line": functools.partial(_access_line, rpc),
        "metrics": _metrics_of_one_call(GatewayMetrics(), rpc, model, signature),
    }


def _header_check(data: bytes, field: str, limits: ImageLimits) -> None:
    with open_encoded(data, field, limits):
        pass


def _predict_request(model: str, signature: str, input_name: str, array: npt.NDArray[Any]) -> bytes:
    """The Predict the gateway sends, built by ModelServerClient.predict's own function, and
    the bytes gRPC sends of it."""
    request = predict_request(model, _VERSION, signature, {input_name: array})
    return request.SerializeToString()


def _predict_response(
    model: str, signature: str, outputs: Mapping[str, npt.NDArray[Any]], typed: bool
) -> bytes:
    """A model server's answer: each output in its dtype's typed field, or in tensor_content."""
    response = predict_pb2.PredictResponse()
    response.model_spec.name = model
    response.model_spec.version.value = _VERSION
    response.model_spec.signature_name = signature
    for name, array in outputs.items():
        proto = response.outputs[name]
        proto.CopyFrom(to_tensor_proto(array))
        if typed:
            proto.ClearField("tensor_content")
            values = getattr(
                proto, {"float32": "float_val", "int64": "int64_val"}[array.dtype.name]
            )
            values.extend(array.ravel().tolist())
    return response.SerializeToString()


def _parse_predict_response(data: bytes) -> dict[str, npt.NDArray[Any]]:
    response = predict_pb2.PredictResponse.FromString(data)
    return {name: from_tensor_proto(tensor) for name, tensor in response.outputs.items()}


def _access_line(rpc: str) -> None:
    """The line RpcLayer logs at the end of each call."""
    access_log.debug(
        "%s %s",
        rpc,
        "OK",
        extra={"rpc": rpc, "code": "OK", "duration_ms": 2.345, "peer": _PEER},
    )


def _metrics_of_one_call(
    metrics: GatewayMetrics, rpc: str, model: str, signature: str
) -> Callable[[], None]:
    """What RpcLayer, the domain core, the backend and the servicer count and
    time for one call; the interceptor's children are bound once per method, as it binds them."""
    seconds = metrics.request_seconds.labels(rpc)
    answered = metrics.requests.labels(rpc, "OK")

    def one_call() -> None:
        started = time.perf_counter()
        with metrics.stage(model, "preprocess"):
            pass
        metrics.backend_calls.labels(model, signature).inc()
        with metrics.stage(model, "predict"):
            pass
        with metrics.stage(model, "postprocess"):
            pass
        seconds.observe(time.perf_counter() - started)
        answered.inc()

    return one_call


class _Discarding(io.StringIO):
    def write(self, text: str, /) -> int:
        return len(text)


@contextlib.contextmanager
def _access_log_discarded() -> Iterator[None]:
    """The access log as the gateway configures it at DEBUG (JSON lines), into a stream that keeps
    nothing; as it was afterwards. Requests carry an id, as in a call."""
    saved = (access_log.handlers[:], access_log.level, access_log.propagate)
    access_log.handlers[:] = [log_handler("json", stream=_Discarding())]
    access_log.setLevel(logging.DEBUG)
    access_log.propagate = False
    token = current_request_id.set("0123456789abcdef0123456789abcdef")
    try:
        yield
    finally:
        current_request_id.reset(token)
        access_log.handlers[:], level, access_log.propagate = saved
        access_log.setLevel(level)


def _median_costs(
    calls: Sequence[Callable[[], object]], repetitions: int, number: int
) -> list[Cost]:
    """Each call's median cost; the repetitions take turns over the calls, after a warm-up."""
    for call in calls:
        _timed_loop(call, max(1, number // 10))
    measured: list[list[Cost]] = [[] for _ in calls]
    for _ in range(repetitions):
        for call, costs in zip(calls, measured, strict=True):
            costs.append(_timed_loop(call, number))
    return [_median(costs) for costs in measured]


def _timed_loop(call: Callable[[], object], number: int) -> Cost:
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(number):
        call()
    return _per_call(time.process_time() - cpu, time.perf_counter() - wall, number)


async def _timed_async_loop(call: Callable[[], Awaitable[object]], number: int) -> Cost:
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(number):
        await call()
    return _per_call(time.process_time() - cpu, time.perf_counter() - wall, number)


def _per_call(cpu_s: float, wall_s: float, number: int) -> Cost:
    return Cost(cpu_s * 1e6 / number, wall_s * 1e6 / number)


def _median(costs: Sequence[Cost]) -> Cost:
    return Cost(
        statistics.median(c.cpu_us for c in costs), statistics.median(c.wall_us for c in costs)
    )


def _noop() -> None:
    pass


async def _hand_off(repetitions: int, number: int) -> Cost:
    """A round trip to the default executor's thread and back, as images.py makes one."""

    def call() -> Awaitable[None]:
        return asyncio.to_thread(_noop)

    await _timed_async_loop(call, max(1, number // 10))
    return _median([await _timed_async_loop(call, number) for _ in range(repetitions)])


def _identity(data: bytes) -> bytes:
    return data


def _echo(responses: Mapping[str, bytes]) -> grpc.GenericRpcHandler[Any, Any]:
    """``/bench.Echo/<rpc>``: bytes in, the workload's response bytes out. It has a request
    deserializer (one that keeps the bytes), so that RequestDecoding has one to wrap."""

    def handler(response: bytes) -> grpc.RpcMethodHandler[bytes, bytes]:
        async def answer(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            return response

        return grpc.unary_unary_rpc_method_handler(
            answer, request_deserializer=_identity, response_serializer=_identity
        )

    methods = {rpc: handler(response) for rpc, response in responses.items()}
    return grpc.method_handlers_generic_handler("bench.Echo", methods)


async def _handler_layers(
    workloads: Mapping[str, _Workload], repetitions: int, round_trips: int
) -> tuple[dict[str, Cost], dict[str, Cost]]:
    """By workload: what the layers add to a round trip (the median of the differences within
    each repetition), and the bare round trip (the median)."""
    echo = _echo({rpc: workload.response for rpc, workload in workloads.items()})
    servers = {"bare": bare_server(echo), "layered": layered_server(echo)}
    ports = {side: server.add_insecure_port("127.0.0.1:0") for side, server in servers.items()}
    for server in servers.values():
        await server.start()
    added: dict[str, Cost] = {}
    bare: dict[str, Cost] = {}
    try:
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{ports['bare']}") as bare_channel,
            grpc.aio.insecure_channel(f"127.0.0.1:{ports['layered']}") as layered_channel,
        ):
            channels = {"bare": bare_channel, "layered": layered_channel}
            for rpc, workload in workloads.items():
                calls = {
                    side: _round_trip(channel, f"/bench.Echo/{rpc}", workload.request)
                    for side, channel in channels.items()
                }
                measured = await _alternating(calls, repetitions, round_trips)
                differences = [
                    Cost(layered.cpu_us - plain.cpu_us, layered.wall_us - plain.wall_us)
                    for plain, layered in zip(measured["bare"], measured["layered"], strict=True)
                ]
                added[rpc] = _median(differences)
                bare[rpc] = _median(measured["bare"])
    finally:
        for server in servers.values():
            await server.stop(None)
    return added, bare


def _round_trip(channel: grpc.aio.Channel, method: str, request: bytes) -> Callable[[], Any]:
    call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    return functools.partial(call, request, timeout=30)


async def _alternating(
    calls: Mapping[str, Callable[[], Awaitable[object]]], repetitions: int, round_trips: int
) -> dict[str, list[Cost]]:
    """Each side's cost in each repetition; the sides take turns going first."""
    for call in calls.values():
        await _timed_async_loop(call, max(1, round_trips // 10))
    sides = list(calls)
    measured: dict[str, list[Cost]] = {side: [] for side in sides}
    for repetition in range(repetitions):
        for side in sides if repetition % 2 == 0 else sides[::-1]:
            measured[side].append(await _timed_async_loop(calls[side], round_trips))
    return measured


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stages", description=__doc__)
    parser.add_argument("--repetitions", type=int, default=REPETITIONS)
    parser.add_argument("--calls", type=int, default=CALLS)
    parser.add_argument("--round-trips", type=int, default=ROUND_TRIPS)
    options = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    results = asyncio.run(run(options.repetitions, options.calls, options.round_trips))
    # After the run: the report's imports (TensorFlow among them) stay out of what it measures.
    from benchmarks.report import _stages_section

    sys.stdout.write("\n".join(_stages_section(results)) + "\n")


if __name__ == "__main__":
    main()
