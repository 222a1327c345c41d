"""Model server settings: tensorflow_model_server's flags, MODELSERVER_* variables, validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.modelserver.settings import ModelServerSettings, parse_settings


@pytest.fixture(autouse=True)
def _no_modelserver_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [
        "MODELSERVER_PORT",
        "MODELSERVER_MODEL_NAME",
        "MODELSERVER_MODEL_BASE_PATH",
        "MODELSERVER_MODEL_CONFIG_FILE",
        "MODELSERVER_FILE_SYSTEM_POLL_WAIT_SECONDS",
    ]:
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_tensorflow_servings() -> None:
    settings = parse_settings(["--model_base_path=/models/half_plus_two"])
    assert settings.port == 8500
    assert settings.model_name == "default"
    assert settings.file_system_poll_wait_seconds == 1.0
    assert settings.allow_version_labels_for_unavailable_models is False
    assert settings.max_num_load_retries == 5


def test_flags_with_equals_sign_or_separate_value() -> None:
    settings = parse_settings(
        [
            "--port=0",
            "--model_name",
            "half_plus_two",
            "--model_base_path",
            "/models/half_plus_two",
            "--file_system_poll_wait_seconds=0.2",
            "--allow_version_labels_for_unavailable_models=true",
        ]
    )
    assert settings.port == 0
    assert settings.model_name == "half_plus_two"
    assert settings.model_base_path == "/models/half_plus_two"
    assert settings.file_system_poll_wait_seconds == 0.2
    assert settings.allow_version_labels_for_unavailable_models is True


def test_environment_variables_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELSERVER_PORT", "9000")
    monkeypatch.setenv("MODELSERVER_MODEL_CONFIG_FILE", "/etc/models.config")
    settings = parse_settings([])
    assert settings.port == 9000
    assert settings.model_config_file == "/etc/models.config"


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELSERVER_PORT", "9000")
    settings = parse_settings(["--port=9001", "--model_base_path=/m"])
    assert settings.port == 9001


def test_needs_a_model_source() -> None:
    with pytest.raises(ValidationError) as raised:
        parse_settings(["--port=0"])
    message = str(raised.value)
    assert "--model_config_file" in message
    assert "--model_base_path" in message


def test_model_source_flags_are_exclusive() -> None:
    with pytest.raises(ValidationError, match="mutually exclusive"):
        ModelServerSettings(model_base_path="/m", model_config_file="/c")


def test_empty_flag_counts_as_not_given() -> None:
    settings = parse_settings(["--model_base_path=", "--model_config_file=/c"])
    assert settings.model_base_path == ""
    assert settings.model_config_file == "/c"


def test_invalid_port_names_the_field() -> None:
    with pytest.raises(ValidationError, match="port"):
        parse_settings(["--port=70000", "--model_base_path=/m"])


def test_unknown_flag_exits_like_a_command_line() -> None:
    with pytest.raises(SystemExit):
        parse_settings(["--model_base_path=/m", "--no_such_flag=1"])


def test_bare_boolean_flags_mean_true_as_in_tensorflow_model_server() -> None:
    settings = parse_settings(["--model_base_path=/m", "--enable_batching", "--rest_api_port=8501"])
    assert settings.enable_batching is True
    assert settings.rest_api_port == 8501
    spelled_out = parse_settings(["--model_base_path=/m", "--enable_batching=false"])
    assert spelled_out.enable_batching is False


def test_tuning_flags_without_effect_are_accepted_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = parse_settings(
        [
            "--rest_api_num_threads=8",
            "--model_base_path=/m",
            "--tensorflow_session_parallelism",
            "2",
        ]
    )
    assert settings.model_base_path == "/m"
    assert "--rest_api_num_threads has no effect" in caplog.text
    assert "--tensorflow_session_parallelism has no effect" in caplog.text


def test_an_unsupported_flag_lists_the_supported_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        parse_settings(["--model_base_path=/m", "--ssl_config_file=/x"])
    assert raised.value.code == 2
    message = capsys.readouterr().err
    assert "unsupported flag --ssl_config_file" in message
    assert "--enable_batching" in message
    assert "--rest_api_port" in message


def test_batching_parameters_need_batching_on() -> None:
    with pytest.raises(ValidationError, match=r"without setting server_options\.enable_batching"):
        parse_settings(["--model_base_path=/m", "--batching_parameters_file=/b"])


def test_allowed_roots_come_from_a_flag_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODELSERVER_MODEL_BASE_PATH_ALLOWED_ROOTS", "/models, /more")
    assert parse_settings(["--model_base_path=/models/a"]).allowed_roots() == ["/models", "/more"]
    with pytest.raises(ValidationError, match="relative/root is not an absolute path"):
        parse_settings(
            ["--model_base_path=/models/a", "--model_base_path_allowed_roots=/models,relative/root"]
        )


def test_the_log_level_is_a_level_name_in_any_case() -> None:
    base = ["--model_base_path=/models/a"]
    assert parse_settings([*base, "--log_level=warning"]).log_level == "warning"
    assert parse_settings(base).log_level == "INFO"
    with pytest.raises(ValidationError, match="log_level"):
        parse_settings([*base, "--log_level=loud"])
