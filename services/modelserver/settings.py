"""Model server settings: `tensorflow_model_server`'s flags, or MODELSERVER_* variables."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, CliApp, SettingsConfigDict

logger = logging.getLogger(__name__)


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
    host: str = Field(
        default="localhost",
        min_length=1,
        description="address the gRPC and REST ports listen on: localhost unless told otherwise; "
        "0.0.0.0 or :: for every interface, as TensorFlow Serving always listens (our extension, "
        "also MODELSERVER_HOST; the container image sets ::)",
    )
    log_level: str = Field(
        default="INFO",
        pattern=r"(?i)^(debug|info|warning|error)$",
        description="the lowest level of the server's own log lines (our extension, also "
        "MODELSERVER_LOG_LEVEL): WARNING leaves out the loads, unloads and reloads",
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
    grpc_socket_path: str = Field(
        default="", description="also serve gRPC on this UNIX domain socket"
    )
    enable_grpc_healthcheck_service: bool = Field(
        default=False, description="serve the standard gRPC health service (grpc.health.v1)"
    )
    rest_api_port: int = Field(
        default=0, ge=0, le=65535, description="HTTP/REST API port; 0 turns the REST API off"
    )
    rest_api_timeout_in_ms: int = Field(
        default=30_000, ge=0, description="deadline of each REST call, in milliseconds"
    )
    rest_api_enable_cors_support: bool = Field(
        default=False, description="answer REST calls with CORS headers allowing any origin"
    )
    model_config_file_poll_wait_seconds: int = Field(
        default=0,
        ge=0,
        description="seconds between re-reads of --model_config_file; 0 reads it once at start",
    )
    model_base_path_allowed_roots: str = Field(
        default="",
        description="comma-separated directories that HandleReloadConfigRequest may take base "
        "paths from (symlinks and '..' resolved); empty: the parents of the start-up config's "
        "base paths (our extension, also MODELSERVER_MODEL_BASE_PATH_ALLOWED_ROOTS)",
    )
    enable_batching: bool = Field(
        default=False, description="merge concurrent requests to a signature into batches"
    )
    batching_parameters_file: str = Field(
        default="", description="BatchingParameters in protobuf text format"
    )
    monitoring_config_file: str = Field(
        default="",
        description="MonitoringConfig in protobuf text format: Prometheus metrics on the REST port",
    )
    enable_model_warmup: bool = Field(
        default=True,
        description="replay assets.extra/tf_serving_warmup_requests before a version serves",
    )
    enable_signature_method_name_check: bool = Field(
        default=False,
        description="Classify and Regress refuse signatures whose method_name is not theirs",
    )
    tensorflow_intra_op_parallelism: int = Field(
        default=0, ge=0, description="threads within one TensorFlow op; 0 lets TensorFlow pick"
    )
    tensorflow_inter_op_parallelism: int = Field(
        default=0, ge=0, description="TensorFlow ops run at once; 0 lets TensorFlow pick"
    )
    tensorflow_session_config_file: str = Field(
        default="",
        description="a TensorFlow ConfigProto in text format for every version's session; the "
        "two parallelism flags, when set, override its thread counts",
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
        if self.batching_parameters_file and not self.enable_batching:
            # TensorFlow Serving's words.
            raise ValueError(
                "server_options.batching_parameters_file is set without setting "
                "server_options.enable_batching to true."
            )
        relative = [root for root in self.allowed_roots() if not os.path.isabs(root)]
        if relative:
            raise ValueError(
                f"--model_base_path_allowed_roots: {relative[0]} is not an absolute path"
            )
        if self.rest_api_port and self.rest_api_port == self.port:
            raise ValueError(f"--rest_api_port and --port are both {self.port}; use two ports")
        return self

    def allowed_roots(self) -> list[str]:
        """--model_base_path_allowed_roots as a list (empty when not given)."""
        return [
            root.strip() for root in self.model_base_path_allowed_roots.split(",") if root.strip()
        ]


def parse_settings(argv: Sequence[str]) -> ModelServerSettings:
    """Reads flags (`--flag=value`, `--flag value`, or a bare `--flag` for true) over
    MODELSERVER_* variables and defaults.

    Raises pydantic.ValidationError for invalid values. A flag this server does not know exits
    through argparse (SystemExit) with the list of supported flags; tensorflow_model_server's
    pure tuning flags are accepted with a warning, since they change nothing here.
    """
    return CliApp.run(ModelServerSettings, cli_args=_normalised(argv))


# tensorflow_model_server flags that only tune its C++ runtime, with nothing to tune here.
NO_EFFECT_FLAGS = frozenset(
    {
        "rest_api_num_threads",
        "tensorflow_session_parallelism",
        "per_process_gpu_memory_fraction",
        "flush_filesystem_caches",
        "num_load_threads",
        "num_unload_threads",
        "xla_cpu_compilation_enabled",
        "enable_profiler",
    }
)


def _normalised(argv: Sequence[str]) -> list[str]:
    """argv with bare boolean flags spelled out, tuning flags dropped and unknown flags
    refused, before pydantic-settings parses it."""
    fields = ModelServerSettings.model_fields
    booleans = {name for name, info in fields.items() if info.annotation is bool}
    result: list[str] = []
    arguments = list(argv)
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        index += 1
        name, has_value, _ = argument.removeprefix("--").partition("=")
        if not argument.startswith("--") or name in ("help", "h"):
            result.append(argument)
            continue
        if name in NO_EFFECT_FLAGS:
            logger.warning("--%s has no effect on this model server; ignored", name)
            if not has_value and index < len(arguments) and not arguments[index].startswith("--"):
                index += 1  # its value
            continue
        if name not in fields:
            supported = ", ".join(f"--{flag}" for flag in sorted(fields))
            print(
                f"modelserver: error: unsupported flag --{name}. Supported flags: {supported}; "
                f"accepted without effect: {', '.join(sorted(NO_EFFECT_FLAGS))}",
                file=sys.stderr,
            )
            raise SystemExit(2)
        bare = not has_value and (index >= len(arguments) or arguments[index].startswith("--"))
        result.append(f"--{name}=true" if name in booleans and bare else argument)
    return result
