"""The gateway's client of the model server (TensorFlow Serving's gRPC API).

Every call carries a deadline and the request id of the gateway call it serves. Transient
UNAVAILABLE and CANCELLED answers are retried by gRPC itself, through the channel's service config
(services/gateway/backend_channel.py), so there is no retry loop here, and gRPC's retry throttling
keeps those retries from multiplying an overload. Backend status codes become domain errors in one
table, `BACKEND_STATUS_MEANINGS` (services/gateway/backend_status.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
import numpy.typing as npt

from services.gateway import errors
from services.gateway.backend_channel import channel_options
from services.gateway.backend_status import meaning_of
from services.gateway.domain import Deadline
from services.gateway.logs import outgoing_metadata
from services.gateway.metrics import GatewayMetrics
from services.gateway.model_server_api import (
    ModelService,
    prediction_service,
    unpack_signature_defs,
)
from services.gateway.replicas import Replicas, RoundRobin
from services.gateway.signatures import Signature, read_signatures
from services.gateway.tensors import TensorConversionError, from_tensor_proto, write_tensor_proto
from services.generated.tfserving.v1 import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
)

log = logging.getLogger(__name__)

# The replicas (by address) whose last status answer had a version of a model AVAILABLE.
HolderLookup = Callable[[str, int], list[str]]


@dataclass(frozen=True)
class VersionStatus:
    """One model version as the model server reports it."""

    version: int
    state: str  # TensorFlow Serving's state name: START, LOADING, AVAILABLE, UNLOADING, END


@dataclass(frozen=True)
class Prediction:
    """Output tensors of one Predict call and the version that computed them."""

    outputs: dict[str, npt.NDArray[Any]]
    version: int


class ModelServerClient:
    """Async client of one model server target (`host:port`, or `dns:///name:port`).

    Calls go round robin over every replica the target resolves to, as the gateway last
    resolved it (`refresh_replicas`). Status checks go to each replica on its own
    (`replica_version_statuses`), and a call pinned to a version that the replica it met does
    not hold goes on to one that does (`holders`, set by the catalog).
    """

    def __init__(self, target: str, *, max_message_bytes: int, metrics: GatewayMetrics) -> None:
        self._metrics = metrics
        self._target = target
        options = channel_options(max_message_bytes)
        self._replicas = Replicas(
            target, lambda address: grpc.aio.insecure_channel(address, options=options)
        )
        authority = self._replicas.authority

        # Subchannels of its own, not gRPC's process-wide pool: a channel that replaces one
        # waiting out its reconnect backoff must connect afresh, not share that wait.
        call_options = [*options, ("grpc.use_local_subchannel_pool", 1)]

        def connect(uri: str) -> grpc.aio.Channel:
            if uri == target or authority is None:
                return grpc.aio.insecure_channel(uri, options=call_options)
            # A channel over the resolved addresses still names the server as the target does.
            return grpc.aio.insecure_channel(
                uri, options=[*call_options, ("grpc.default_authority", authority)]
            )

        self._round_robin = RoundRobin(target, connect)
        self.holders: HolderLookup = lambda model, version: []

    async def close(self) -> None:
        await self._round_robin.close()
        await self._replicas.close()

    async def predict(
        self,
        model: str,
        version: int,
        signature: str,
        inputs: Mapping[str, npt.NDArray[Any]],
        deadline: Deadline,
        outputs: Sequence[str] = (),
    ) -> Prediction:
        """Runs one signature of a pinned model version; ``outputs`` limits what comes back."""
        request = predict_request(model, version, signature, inputs, outputs)
        self._metrics.backend_calls.labels(model, signature).inc()
        with self._metrics.stage(model, "predict"):
            response: predict_pb2.PredictResponse = await self._pinned_call(
                "Predict", request, model, version, deadline
            )
        try:
            arrays = {name: from_tensor_proto(t) for name, t in response.outputs.items()}
        except TensorConversionError as exc:
            raise errors.ModelContractError(
                f"model {model} version {version} returned an unreadable tensor: {exc}"
            ) from exc
        return Prediction(outputs=arrays, version=response.model_spec.version.value)

    async def signatures(
        self, model: str, version: int, deadline: Deadline
    ) -> dict[str, Signature]:
        """The serving signatures of a pinned model version, from GetModelMetadata."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=_spec(model, version), metadata_field=["signature_def"]
        )
        response: get_model_metadata_pb2.GetModelMetadataResponse = await self._pinned_call(
            "GetModelMetadata", request, model, version, deadline
        )
        signature_map = unpack_signature_defs(response.metadata["signature_def"])
        if signature_map is None:
            raise errors.ModelContractError(f"model {model} sent metadata without signature_def")
        return read_signatures(signature_map.signature_def)

    async def replica_version_statuses(
        self, model: str, deadline: Deadline
    ) -> dict[str, list[VersionStatus] | errors.GatewayError]:
        """Each replica's versions of the model (an empty list: it does not have the model),
        or why its check failed, by replica address."""

        async def ask(channel: grpc.aio.Channel) -> list[VersionStatus] | errors.GatewayError:
            try:
                return await _version_statuses(ModelService(channel), model, deadline)
            except errors.ModelNotFound:
                return []
            except errors.GatewayError as exc:
                return exc

        if not self._replicas.addressable:
            with self._round_robin.lease() as channel:
                return {self._target: await ask(channel)}
        if not self._replicas.addresses():
            await self.refresh_replicas()
        addresses = self._replicas.addresses()
        if not addresses:
            raise errors.BackendUnavailable("model server is unavailable (no replica resolved)")
        with contextlib.ExitStack() as calls:
            # Held from here, so that a refresh meanwhile closes none of them under the check.
            channels = [calls.enter_context(self._replicas.use(address)) for address in addresses]
            answers = await asyncio.gather(*(ask(channel) for channel in channels))
        if any(isinstance(answer, list) for answer in answers):
            # Before the catalog reports SERVING again, calls must be able to go out too.
            self._round_robin.renew_if_failing()
        return dict(zip(addresses, answers, strict=True))

    async def refresh_replicas(self) -> None:
        """Follows the target's resolution: pods come and go, and new calls go where they are
        now, while the calls in flight finish where they are."""
        addresses = await self._replicas.refresh()
        if addresses is not None and self._replicas.follows_names:
            self._round_robin.follow(addresses)

    async def _pinned_call(
        self, method: str, request: Any, model: str, version: int, deadline: Deadline
    ) -> Any:
        """Calls `method` round robin; if the replica it met does not hold the version (it has
        not loaded it yet, or already unloaded it), calls each replica that does, in turn."""
        try:
            with self._round_robin.lease() as channel:
                stub = prediction_service(channel)
                return await self._call(getattr(stub, method), request, model, version, deadline)
        except errors.ModelNotFound as not_found:
            error: errors.GatewayError = not_found
        for address in self.holders(model, version):
            if address not in self._replicas:
                continue  # it left since its last status answer
            with self._replicas.use(address) as channel:
                stub = prediction_service(channel)
                try:
                    return await self._call(
                        getattr(stub, method), request, model, version, deadline
                    )
                except (errors.ModelNotFound, errors.BackendUnavailable) as exc:
                    error = exc
        raise error

    async def _call(
        self,
        method: Any,
        request: Any,
        model: str,
        version: int,
        deadline: Deadline,
    ) -> Any:
        try:
            timeout = deadline.remaining(_subject(model, version))
            return await method(request, timeout=timeout, metadata=outgoing_metadata())
        except grpc.aio.AioRpcError as exc:
            self._metrics.backend_errors.labels(model, exc.code().name).inc()
            _translate(exc, model, version, deadline)


async def _version_statuses(
    stub: ModelService, model: str, deadline: Deadline
) -> list[VersionStatus]:
    request = get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name=model))
    try:
        response = await stub.GetModelStatus(
            request, timeout=deadline.remaining(_subject(model, None)), metadata=outgoing_metadata()
        )
    except grpc.aio.AioRpcError as exc:
        _translate(exc, model, None, deadline)
    state_name = get_model_status_pb2.ModelVersionStatus.State.Name
    return [
        VersionStatus(version=status.version, state=state_name(status.state))
        for status in response.model_version_status
    ]


def predict_request(
    model: str,
    version: int,
    signature: str,
    inputs: Mapping[str, npt.NDArray[Any]],
    outputs: Sequence[str] = (),
) -> predict_pb2.PredictRequest:
    """The Predict of one signature of a pinned model version, its inputs as TensorProtos."""
    request = predict_pb2.PredictRequest(output_filter=outputs)
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    request.model_spec.version.value = version
    for name, array in inputs.items():
        write_tensor_proto(request.inputs[name], array)
    return request


def _spec(model: str, version: int, signature: str = "") -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=model, signature_name=signature)
    spec.version.value = version
    return spec


def _subject(model: str, version: int | None) -> str:
    return f"model {model}" if version is None else f"model {model} version {version}"


def _translate(
    exc: grpc.aio.AioRpcError, model: str, version: int | None, deadline: Deadline
) -> NoReturn:
    """Turns a model server status into the domain error that explains it to the client. The
    client gets the row's fixed message; the model server's own text goes to the log only."""
    code = exc.code()
    meaning = meaning_of(code)
    subject = _subject(model, version)
    if meaning.logged:
        log.warning("model server answered %s for %s: %s", code.name, subject, exc.details() or "")
    message = meaning.message.format(subject=subject, code=code.name, deadline=deadline.origin)
    raise meaning.error(message) from exc
