"""TensorFlow Serving's HTTP/REST API on --rest_api_port, served by aiohttp in the server's loop.

    GET  /v1/models/{name}[/versions/{v} | /labels/{l}]            model status
    GET  /v1/models/{name}[/versions/{v} | /labels/{l}]/metadata   signature defs
    POST /v1/models/{name}[/versions/{v} | /labels/{l}]:predict    row or columnar JSON
    POST /v1/models/{name}[/versions/{v} | /labels/{l}]:classify   tf.Examples as JSON objects
    POST /v1/models/{name}[/versions/{v} | /labels/{l}]:regress

Answers and errors are TensorFlow Serving's JSON (``{"error": "..."}``), with its mapping from
status codes to HTTP statuses. A body's JSON is parsed by json_body.py, a big one in a worker
process, and its tensors are built in a worker thread, so that the loop keeps serving gRPC; a
body nested too deeply for Python is a 400 like any malformed JSON. With a monitoring config,
the Prometheus metrics are served at its path on the same port.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from aiohttp import web
from google.protobuf import json_format
from prometheus_client import CONTENT_TYPE_LATEST
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)

from services.common.bounded import bound_message, shorten
from services.modelserver.dataplane import SIGNATURE_DEF_FIELD, DataPlane
from services.modelserver.errors import InvalidArgumentError, ServingError, StartupError
from services.modelserver.grpc_errors import grpc_status
from services.modelserver.json_body import INLINE_BODY_BYTES, BodyDecoder
from services.modelserver.monitoring import ServingMetrics
from services.modelserver.rest_json import (
    classify_answer,
    examples_input,
    predict_answer,
    predict_inputs,
    regress_answer,
)

logger = logging.getLogger(__name__)

# The largest request body accepted; larger ones get 413 before anything is parsed.
MAX_BODY_BYTES = 256 * 1024 * 1024

_HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}
_CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET",
    "Access-Control-Allow-Headers": "Content-Type",
}
_MODEL = r"/v1/models/{name:[^/:]+}"
_VERSIONS = ("", "/versions/{version:[^/:]+}", "/labels/{label:[^/:]+}")
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_T = TypeVar("_T")


@dataclass(frozen=True)
class RestOptions:
    timeout_s: float
    enable_cors: bool
    metrics_path: str | None  # None: no metrics endpoint


class RestApi:
    """The handlers; each turns JSON into the data plane's messages and back."""

    def __init__(self, dataplane: DataPlane, metrics: ServingMetrics, options: RestOptions):
        self._dataplane = dataplane
        self._metrics = metrics
        self._options = options
        self._decoder = BodyDecoder()

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._errors_as_json])
        app.on_cleanup.append(self._close_decoder)
        for versions in _VERSIONS:
            app.router.add_get(_MODEL + versions, self._status)
            app.router.add_get(_MODEL + versions + "/metadata", self._metadata)
            app.router.add_post(_MODEL + versions + ":predict", self._predict)
            app.router.add_post(_MODEL + versions + ":classify", self._classify)
            app.router.add_post(_MODEL + versions + ":regress", self._regress)
        if self._options.metrics_path is not None:
            app.router.add_get(self._options.metrics_path, self._prometheus)
        app.router.add_route("*", "/v1/{tail:.*}", self._malformed)
        return app

    @web.middleware
    async def _errors_as_json(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        response: web.StreamResponse
        try:
            async with asyncio.timeout(self._options.timeout_s):
                response = await handler(request)
        except ServingError as error:
            response = _error(grpc_status(error), error.message)
        except TimeoutError:
            response = _error(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"Request timed out after {self._options.timeout_s * 1000:.0f} ms "
                "(--rest_api_timeout_in_ms)",
            )
        except web.HTTPRequestEntityTooLarge:
            response = web.json_response(
                {"error": f"Request body is larger than {MAX_BODY_BYTES} bytes"}, status=413
            )
        except web.HTTPException as exc:
            response = web.json_response({"error": exc.reason}, status=exc.status)
        except Exception:
            logger.exception("REST %s %s failed unexpectedly", request.method, request.path)
            response = _error(grpc.StatusCode.INTERNAL, "Internal error in the model server")
        if self._options.enable_cors:
            response.headers.update(_CORS_HEADERS)
        return response

    async def _close_decoder(self, _app: web.Application) -> None:
        self._decoder.close()

    async def _body(self, request: web.Request, predict: bool = False) -> dict[str, Any]:
        return await self._decoder.decode(await request.read(), predict)

    async def _status(self, request: web.Request) -> web.Response:
        status = self._dataplane.get_model_status(
            get_model_status_pb2.GetModelStatusRequest(model_spec=_model_spec(request))
        )
        return web.json_response(_as_dict(status))

    async def _metadata(self, request: web.Request) -> web.Response:
        metadata = self._dataplane.get_model_metadata(
            get_model_metadata_pb2.GetModelMetadataRequest(
                model_spec=_model_spec(request), metadata_field=[SIGNATURE_DEF_FIELD]
            )
        )
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        metadata.metadata[SIGNATURE_DEF_FIELD].Unpack(signature_map)
        return web.json_response(
            {
                "model_spec": _as_dict(metadata.model_spec),
                "metadata": {SIGNATURE_DEF_FIELD: _as_dict(signature_map)},
            }
        )

    async def _predict(self, request: web.Request) -> web.Response:
        body = await self._body(request, predict=True)
        spec = _model_spec(request)
        signature_name = body.get("signature_name", "")
        if not isinstance(signature_name, str):
            raise InvalidArgumentError(
                "JSON Value: not formatted correctly. 'signature_name' key must be a string value."
            )
        spec.signature_name = signature_name
        version, inputs = self._dataplane.signature_inputs(spec)
        # The inputs were read for this version's signature: let this version answer.
        spec.version.value = version
        if request.content_length is not None and request.content_length <= INLINE_BODY_BYTES:
            tensors, row_format = _built(predict_inputs, body, inputs)
        else:  # copies of big arrays, or many strings: not on the loop
            tensors, row_format = await asyncio.to_thread(_built, predict_inputs, body, inputs)
        predict = predict_pb2.PredictRequest(model_spec=spec)
        for name, tensor in tensors.items():
            predict.inputs[name].CopyFrom(tensor)
        response = await self._dataplane.predict(predict, entrypoint="REST")
        return web.json_response(predict_answer(response.outputs, row_format))

    async def _classify(self, request: web.Request) -> web.Response:
        body, spec = await self._example_call(request)
        classify = classification_pb2.ClassificationRequest(
            model_spec=spec, input=await _examples(request, body, "classify")
        )
        response = await self._dataplane.classify(classify, entrypoint="REST")
        return web.json_response(classify_answer(response.result))

    async def _regress(self, request: web.Request) -> web.Response:
        body, spec = await self._example_call(request)
        regress = regression_pb2.RegressionRequest(
            model_spec=spec, input=await _examples(request, body, "regress")
        )
        response = await self._dataplane.regress(regress, entrypoint="REST")
        return web.json_response(regress_answer(response.result))

    async def _example_call(
        self, request: web.Request
    ) -> tuple[dict[str, Any], model_pb2.ModelSpec]:
        body = await self._body(request)
        spec = _model_spec(request)
        spec.signature_name = _signature_name(body)
        return body, spec

    async def _prometheus(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self._metrics.exposition(),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )

    async def _malformed(self, request: web.Request) -> web.Response:
        raise InvalidArgumentError(f"Malformed request: {request.method} {shorten(request.path)}")


async def start_rest_api(api: RestApi, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serves the REST API; returns the runner (to clean up) and the bound port."""
    runner = web.AppRunner(api.application(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise StartupError(f"--rest_api_port: cannot listen on port {port}: {exc}") from exc
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, int(bound)


def _model_spec(request: web.Request) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=request.match_info["name"])
    version = request.match_info.get("version")
    label = request.match_info.get("label")
    if version is not None:
        if not version.isdigit():
            raise InvalidArgumentError(f"Failed to convert version: {shorten(version)} to numeric.")
        spec.version.value = int(version)
    if label is not None:
        spec.version_label = label
    return spec


def _built(build: Callable[..., _T], *arguments: Any) -> _T:
    """What ``build`` makes of a parsed body; a value nested deeper than Python recurses is
    refused like malformed JSON."""
    try:
        return build(*arguments)
    except RecursionError as exc:
        raise InvalidArgumentError("JSON Value: nested too deeply to be a tensor") from exc


async def _examples(request: web.Request, body: dict[str, Any], method: str) -> Any:
    if request.content_length is not None and request.content_length <= INLINE_BODY_BYTES:
        return _built(examples_input, body, method)
    return await asyncio.to_thread(_built, examples_input, body, method)


def _signature_name(body: dict[str, Any]) -> str:
    signature_name = body.get("signature_name", "")
    if not isinstance(signature_name, str):
        raise InvalidArgumentError(
            "JSON Value: not formatted correctly. 'signature_name' key must be a string value."
        )
    return signature_name


def _as_dict(message: Any) -> Any:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _error(code: grpc.StatusCode, message: str) -> web.Response:
    # What a message echoes is shortened where it is written; this bounds any that is not.
    return web.json_response({"error": bound_message(message)}, status=_HTTP_STATUS.get(code, 500))
