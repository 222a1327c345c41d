"""Model server settings: `tensorflow_model_server`'s flags, or MODELSERVER_* variables."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, CliApp, SettingsConfigDict


class ModelServerSettings(BaseSettings):
    """Flags keep TensorFlow Serving's names and defaults, so scripts work with either server."""

    model_config = SettingsConfigDict(
        env_prefix="MODELSERVER_",
        cli_prog_name="modelserver",
        # `--flag=true` / `--flag false`, the way tensorflow_model_server spells booleans.
        cli_implicit_flags=False,
        # Field names such as `model_name` are TensorFlow Serving's flags, not pydantic internals.
        protected_namespaces=(),
    )

    port: int = Field(
        default=8500, ge=0, le=65535, description="gRPC port to listen on; 0 picks a free port"
    )
    model_name: str = Field(
        default="default",
        min_length=1,
        description="name of the model (ignored with --model_config_file)",
    )
    model_base_path: str = Field(
        default="",
        description="absolute path of the model's versions: <base_path>/<integer version>/",
    )
    model_config_file: str = Field(
        default="", description="ModelServerConfig in protobuf text format, for several models"
    )
    file_system_poll_wait_seconds: float = Field(
        default=1.0,
        description=(
            "seconds between polls of the file system for new versions; "
            "0 polls once at start, a negative value never polls"
        ),
    )
    allow_version_labels_for_unavailable_models: bool = Field(
        default=False,
        description="allow version_labels in the config to name versions that are not loaded yet",
    )
    max_num_load_retries: int = Field(
        default=5, ge=0, description="how often a failed version load is retried before giving up"
    )
    load_retry_interval_micros: int = Field(
        default=60_000_000,
        ge=0,
        description="microseconds between retries of a failed version load",
    )
    grpc_channel_arguments: str = Field(
        default="",
        description=(
            "comma-separated gRPC server channel arguments, e.g. "
            "grpc.max_connection_age_ms=30000,grpc.max_receive_message_length=1048576"
        ),
    )

    @model_validator(mode="after")
    def _one_model_source(self) -> ModelServerSettings:
        # As in tensorflow_model_server, an empty flag counts as not given.
        if not self.model_config_file and not self.model_base_path:
            raise ValueError(
                "one of --model_config_file or --model_base_path is required "
                "(MODELSERVER_MODEL_CONFIG_FILE / MODELSERVER_MODEL_BASE_PATH)"
            )
        if self.model_config_file and self.model_base_path:
            raise ValueError(
                "--model_config_file and --model_base_path are mutually exclusive: "
                "list the model in the config file instead"
            )
        return self


def parse_settings(argv: Sequence[str]) -> ModelServerSettings:
    """Reads flags (`--flag=value` or `--flag value`) over MODELSERVER_* variables and defaults.

    Raises pydantic.ValidationError for invalid values; unknown flags and `--help` exit through
    argparse (SystemExit), as a command line should.
    """
    return CliApp.run(ModelServerSettings, cli_args=list(argv))
