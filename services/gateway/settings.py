"""Gateway settings: flags (`--port=50051`) override `GATEWAY_*` environment variables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

from pydantic import Field, FilePath, SecretStr, model_validator
from pydantic_settings import BaseSettings, CliApp, SettingsConfigDict

from services.gateway.logs import LogFormat
from training.contracts import autoencoder, classifier, cnn, forecaster, word2vec


class GatewaySettings(BaseSettings):
    """Everything the gateway can be told at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_",
        cli_prog_name="python -m services.gateway",
        cli_implicit_flags=False,
        frozen=True,
    )

    host: str = Field(
        "localhost",
        min_length=1,
        description="address the gRPC, health and metrics ports listen on: localhost unless told "
        "otherwise; 0.0.0.0 or :: for every interface (the container image sets ::)",
    )
    port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 picks a free one")
    model_server: str = Field(
        "localhost:8500",
        description="model server target, host:port or dns:///service:port for round robin",
    )
    backend_timeout_s: float = Field(
        5.0, gt=0, description="deadline of a model server call when the client sets none"
    )
    model_refresh_s: float = Field(
        1.0, gt=0, description="how often the model server is asked for new model versions"
    )
    max_batch_size: int = Field(1024, ge=1, description="most samples accepted in one request")
    max_concurrent_rpcs: int = Field(
        1000,
        ge=1,
        description="calls served at once; more are refused at once with RESOURCE_EXHAUSTED, "
        "so a slow model server cannot pile up work and memory",
    )
    max_message_bytes: int = Field(
        64 * 1024 * 1024, ge=4 * 1024 * 1024, description="largest gRPC message, both directions"
    )
    classifier_model: str = Field(
        classifier.MODEL_NAME, description="model name of the wine classifier"
    )
    cnn_model: str = Field(cnn.MODEL_NAME, description="model name of the digit recogniser")
    forecaster_model: str = Field(forecaster.MODEL_NAME, description="model name of the forecaster")
    word2vec_model: str = Field(word2vec.MODEL_NAME, description="model name of the word vectors")
    autoencoder_model: str = Field(
        autoencoder.MODEL_NAME, description="model name of the autoencoder"
    )
    unserved_model_note: str = Field(
        "",
        max_length=200,
        description="said in the UNAVAILABLE answer to a call for a model no model server has "
        "a version of yet, after its name: why (the local suite says it is still training)",
    )
    max_image_bytes: int = Field(4 * 1024 * 1024, ge=1, description="largest encoded image")
    max_image_pixels: int = Field(4096 * 4096, ge=1, description="most pixels of an image")
    max_request_pixels: int = Field(
        8192 * 8192,
        ge=1,
        description="most pixels of all images of one request together (64 Mpx: four images "
        "at max_image_pixels); decoding them is the CPU one request may cost",
    )
    max_history: int = Field(10_000, ge=1, description="most past values in a forecast request")
    max_horizon: int = Field(240, ge=1, description="most values one forecast may generate")
    max_generation_batch: int = Field(
        256,
        ge=1,
        description="most forecasts whose primes or steps share one model server call "
        "(1: every forecast makes its calls on its own)",
    )
    metrics_port: int = Field(
        9090, ge=0, le=65535, description="HTTP port of /metrics for Prometheus; 0 picks one"
    )
    health_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="plaintext port serving only grpc.health.v1, for probes that cannot speak "
        "TLS (Kubernetes' gRPC probes); unset: none; 0 picks a free one",
    )
    shutdown_grace_s: float = Field(5.0, ge=0, description="time in-flight calls get to finish")
    max_connection_age_s: float | None = Field(
        None,
        gt=0,
        description="a client connection older than this (gRPC adds +-10%) is asked to reconnect "
        "(GOAWAY), so that clients spread over new gateway pods after a scale-up; unset: "
        "connections live as long as their clients keep them (gRPC's default)",
    )
    max_connection_age_grace_s: float = Field(
        30.0,
        ge=0,
        description="time the calls on a connection past max_connection_age_s get to finish "
        "before it is closed",
    )
    log_level: str = Field("INFO", description="Python logging level")
    log_format: LogFormat = Field("json", description="json: one JSON object per line; or text")
    tls_cert_file: FilePath | None = Field(
        None, description="PEM certificate chain; with tls_key_file, the gateway serves TLS only"
    )
    tls_key_file: FilePath | None = Field(None, description="PEM private key of tls_cert_file")
    tls_client_ca_file: FilePath | None = Field(
        None, description="PEM CA bundle; when set, clients must present a certificate it signed"
    )
    auth_token: SecretStr | None = Field(
        None,
        description="when set, every call but health checks needs 'authorization: Bearer <token>'",
    )

    @model_validator(mode="after")
    def _tls_files_go_together(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file must be set together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file (mutual TLS) needs tls_cert_file and tls_key_file")
        if self.auth_token is not None and not self.auth_token.get_secret_value().strip():
            raise ValueError("auth_token must not be empty")
        return self

    @classmethod
    def from_args(cls, argv: Sequence[str] | None) -> GatewaySettings:
        """Settings from flags (argv without the program name; None: sys.argv) and environment."""
        return CliApp.run(cls, cli_args=None if argv is None else list(argv))
