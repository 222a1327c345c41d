"""How a stopping pod reaches the gateway in the manifests (RELIABILITY.md, "A replica that
stops"): TensorFlow Serving's preStop wait outlasts the DNS record's TTL, the gateway's refresh
and its longest backend call, so the pod is idle when SIGTERM kills it; and the gateway moves
long-lived clients to new connections, so pods the autoscaler adds get a share of them."""

from __future__ import annotations

import pytest
from rendered import OVERLAYS, config_map, container, render

from services.gateway.settings import GatewaySettings

# CoreDNS's kubernetes plugin answers records of Services with this TTL unless told otherwise.
CLUSTER_DNS_TTL_S = 5


def gateway_settings(overlay: str, monkeypatch: pytest.MonkeyPatch) -> GatewaySettings:
    env = config_map(render(f"overlays/{overlay}"), "gateway-config")["data"]
    for variable in (
        "GATEWAY_MODEL_REFRESH_S",
        "GATEWAY_BACKEND_TIMEOUT_S",
        "GATEWAY_MAX_CONNECTION_AGE_S",
    ):
        monkeypatch.setenv(variable, env[variable])
    return GatewaySettings.from_args([])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_tensorflow_servings_pre_stop_outlasts_what_the_gateway_needs_to_leave_it(
    overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = gateway_settings(overlay, monkeypatch)
    serving = container(render(f"overlays/{overlay}"), "tfserving")
    pre_stop_s = serving["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop_s >= (CLUSTER_DNS_TTL_S + settings.model_refresh_s + settings.backend_timeout_s)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_deployed_gateway_moves_clients_to_new_connections(
    overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert gateway_settings(overlay, monkeypatch).max_connection_age_s == 300
