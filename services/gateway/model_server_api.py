"""TensorFlow Serving's gRPC methods, called by their wire paths with the gateway's own messages.

The messages (services/generated/tfserving/v1, from protos/tfserving) carry TensorFlow Serving's
field names and numbers in a package of the suite's own, so the gateway needs neither TensorFlow
nor tensorflow-serving-api, and its classes can share a process with theirs.
"""

from __future__ import annotations

import weakref

import grpc
from google.protobuf import any_pb2

from services.generated.tfserving.v1 import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    predict_pb2,
)

PREDICTION_SERVICE = "tensorflow.serving.PredictionService"
MODEL_SERVICE = "tensorflow.serving.ModelService"

# How a GetModelMetadata answer names the type of its packed signature_def field.
SIGNATURE_DEF_MAP_TYPE = "tensorflow.serving.SignatureDefMap"


class PredictionService:
    """The PredictionService methods the gateway calls, on one channel."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.Predict = channel.unary_unary(
            f"/{PREDICTION_SERVICE}/Predict",
            request_serializer=predict_pb2.PredictRequest.SerializeToString,
            response_deserializer=predict_pb2.PredictResponse.FromString,
        )
        self.GetModelMetadata = channel.unary_unary(
            f"/{PREDICTION_SERVICE}/GetModelMetadata",
            request_serializer=get_model_metadata_pb2.GetModelMetadataRequest.SerializeToString,
            response_deserializer=get_model_metadata_pb2.GetModelMetadataResponse.FromString,
        )


class ModelService:
    """The ModelService method the gateway calls, on one channel."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.GetModelStatus = channel.unary_unary(
            f"/{MODEL_SERVICE}/GetModelStatus",
            request_serializer=get_model_status_pb2.GetModelStatusRequest.SerializeToString,
            response_deserializer=get_model_status_pb2.GetModelStatusResponse.FromString,
        )


# Each channel's method objects, made once rather than on every call.
_PREDICTION_SERVICES: weakref.WeakKeyDictionary[grpc.aio.Channel, PredictionService] = (
    weakref.WeakKeyDictionary()
)


def prediction_service(channel: grpc.aio.Channel) -> PredictionService:
    """The PredictionService of a channel, kept as long as the channel lives."""
    service = _PREDICTION_SERVICES.get(channel)
    if service is None:
        service = _PREDICTION_SERVICES[channel] = PredictionService(channel)
    return service


def unpack_signature_defs(
    packed: any_pb2.Any,
) -> get_model_metadata_pb2.SignatureDefMap | None:
    """The SignatureDefMap in a metadata answer's Any, or None when it holds another type.

    Any.Unpack would compare the type URL with this class's own name, tfserving.v1.*, so the
    URL is checked against TensorFlow Serving's name here and the bytes parsed directly.
    """
    if packed.type_url.rpartition("/")[2] != SIGNATURE_DEF_MAP_TYPE:
        return None
    return get_model_metadata_pb2.SignatureDefMap.FromString(packed.value)
