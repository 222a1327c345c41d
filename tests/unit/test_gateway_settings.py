"""Gateway settings come from GATEWAY_* variables and flags; flags win."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.gateway.settings import GatewaySettings


def test_defaults_are_the_documented_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = GatewaySettings.from_args([])
    assert settings.port == 50051
    assert settings.model_server == "localhost:8500"


def test_environment_then_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "6000")
    monkeypatch.setenv("GATEWAY_MODEL_SERVER", "dns:///tf-serving:8500")
    settings = GatewaySettings.from_args(["--port=7000"])
    assert settings.port == 7000
    assert settings.model_server == "dns:///tf-serving:8500"


def test_bad_values_name_the_setting() -> None:
    with pytest.raises(ValidationError, match="backend_timeout_s"):
        GatewaySettings.from_args(["--backend_timeout_s=-1"])
