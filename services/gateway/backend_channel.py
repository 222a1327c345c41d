"""How the gateway's channels to the model server are set up: `channel_options`.

Transient UNAVAILABLE and CANCELLED answers are retried by gRPC itself, through the service config
here, so the client has no retry loop of its own, and gRPC's retry throttling keeps those retries
from multiplying an overload. The same options give client-side round robin, the message limits,
keepalive and a short reconnect backoff.
"""

from __future__ import annotations

import json
from typing import Any

from services.gateway.model_server_api import MODEL_SERVICE, PREDICTION_SERVICE

RETRY_MAX_TOKENS = 1000  # the most gRPC allows
RETRY_TOKEN_RATIO = 0.1

_RETRY_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [
                    {"service": PREDICTION_SERVICE},
                    {"service": MODEL_SERVICE},
                ],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    # A model server that shuts down cancels the calls it has received but not
                    # yet started (grpc/grpc#41785): the client sees CANCELLED, though nothing
                    # ran. Every method the gateway calls only reads, so a retry is safe, and
                    # round robin sends it to another replica.
                    "retryableStatusCodes": ["UNAVAILABLE", "CANCELLED"],
                },
            }
        ],
        # A full batching queue answers UNAVAILABLE too, so unthrottled retries would triple
        # the load on a saturated model server. Each attempt that fails with a retryable code
        # costs a token, each success earns tokenRatio back, and no retry is sent while half
        # the tokens or fewer are left. So a burst of up to maxTokens / 2 = 500 failed attempts
        # is still retried: a replica draining in a rolling restart refuses calls for 0.1 s or
        # more, which at a few thousand calls a second spread over two replicas is a few
        # hundred. A backend that goes on failing then gets one attempt per call, and retries
        # come back only while failures stay under a tenth of the successes. The tokens belong
        # to the round-robin channel and so cover all of its replicas; when the replicas change
        # and the channel is replaced (services/gateway/replicas.py), the new one starts with a
        # full bucket, while the old one keeps its own for the calls that finish on it.
        "retryThrottling": {"maxTokens": RETRY_MAX_TOKENS, "tokenRatio": RETRY_TOKEN_RATIO},
    }
)


def channel_options(max_message_bytes: int) -> list[tuple[str, Any]]:
    """The model server channel's options: retries, client-side round robin over every address
    the target resolves to (a headless Service's pods), message limits and keepalive."""
    return [
        ("grpc.service_config", _RETRY_SERVICE_CONFIG),
        ("grpc.enable_retries", 1),
        ("grpc.lb_policy_name", "round_robin"),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        # Pings on idle connections, so a peer or proxy that vanished is noticed.
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        # Notice a restarted model server within a second rather than the default 120 s.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 1000),
    ]
