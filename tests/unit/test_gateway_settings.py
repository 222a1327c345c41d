"""Gateway settings come from GATEWAY_* variables and flags; flags win."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.gateway.settings import GatewaySettings


def test_defaults_are_the_documented_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = GatewaySettings.from_args([])
    assert settings.port == 50051
    assert settings.model_server == "localhost:8500"


def test_listens_on_localhost_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEWAY_HOST", raising=False)
    assert GatewaySettings.from_args([]).host == "localhost"
    monkeypatch.setenv("GATEWAY_HOST", "::")
    assert GatewaySettings.from_args([]).host == "::"
    assert GatewaySettings.from_args(["--host=0.0.0.0"]).host == "0.0.0.0"


def test_environment_then_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "6000")
    monkeypatch.setenv("GATEWAY_MODEL_SERVER", "dns:///tf-serving:8500")
    settings = GatewaySettings.from_args(["--port=7000"])
    assert settings.port == 7000
    assert settings.model_server == "dns:///tf-serving:8500"


def test_bad_values_name_the_setting() -> None:
    with pytest.raises(ValidationError, match="backend_timeout_s"):
        GatewaySettings.from_args(["--backend_timeout_s=-1"])


def test_tls_certificate_and_key_go_together(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not checked here")
    with pytest.raises(ValidationError, match="tls_cert_file and tls_key_file must be set"):
        GatewaySettings.from_args([f"--tls_cert_file={cert}"])
    with pytest.raises(ValidationError, match="tls_client_ca_file"):
        GatewaySettings.from_args([f"--tls_client_ca_file={cert}"])


def test_missing_certificate_files_are_named(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not checked here")
    with pytest.raises(ValidationError, match="tls_key_file") as raised:
        GatewaySettings.from_args(
            [f"--tls_cert_file={cert}", f"--tls_key_file={tmp_path / 'absent.pem'}"]
        )
    assert "tls_cert_file" not in str(raised.value)


def test_the_token_comes_from_the_environment_and_is_never_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_AUTH_TOKEN", "s3cret")
    settings = GatewaySettings.from_args([])
    assert settings.auth_token is not None
    assert settings.auth_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    monkeypatch.setenv("GATEWAY_AUTH_TOKEN", "  ")
    with pytest.raises(ValidationError, match="auth_token must not be empty"):
        GatewaySettings.from_args([])


def test_connections_live_on_unless_a_maximum_age_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = GatewaySettings.from_args([])
    assert settings.max_connection_age_s is None
    assert settings.max_connection_age_grace_s == 30.0
    monkeypatch.setenv("GATEWAY_MAX_CONNECTION_AGE_S", "300")
    monkeypatch.setenv("GATEWAY_MAX_CONNECTION_AGE_GRACE_S", "20")
    settings = GatewaySettings.from_args([])
    assert (settings.max_connection_age_s, settings.max_connection_age_grace_s) == (300, 20)
    with pytest.raises(ValidationError, match="max_connection_age_s"):
        GatewaySettings.from_args(["--max_connection_age_s=0"])
