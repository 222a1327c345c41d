"""Which models to serve: TensorFlow Serving's ModelServerConfig, from a file or from flags.

The config is parsed with the official `model_server_config_pb2` and validated the way
`ServerCore` does, with its messages, then turned into plain `ModelDefinition`s.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from google.protobuf import message, text_format
from tensorflow.core.protobuf import config_pb2
from tensorflow_serving.config import model_server_config_pb2

from services.modelserver.errors import StartupError
from services.modelserver.settings import ModelServerSettings

_Message = TypeVar("_Message", bound=message.Message)

TENSORFLOW_PLATFORM = "tensorflow"


@dataclass(frozen=True)
class VersionPolicy:
    """Which of the versions on disk to serve (ServableVersionPolicy)."""

    kind: Literal["latest", "all", "specific"] = "latest"
    num_versions: int = 1
    versions: frozenset[int] = frozenset()


@dataclass(frozen=True)
class ModelDefinition:
    """One configured model: where its versions live and which of them to serve."""

    name: str
    base_path: Path
    version_policy: VersionPolicy = VersionPolicy()
    version_labels: Mapping[str, int] = field(default_factory=dict)


def load_model_definitions(settings: ModelServerSettings) -> list[ModelDefinition]:
    """The models the settings ask for; raises StartupError with a message naming the cause."""
    if settings.model_config_file:
        config = read_model_config_file(settings.model_config_file)
    else:
        config = build_single_model_config(settings.model_name, settings.model_base_path)
    return model_definitions_from_config(
        config, settings.allow_version_labels_for_unavailable_models
    )


def read_model_config_file(path: str) -> model_server_config_pb2.ModelServerConfig:
    """Parses a ModelServerConfig in protobuf text format, as `--model_config_file` names it."""
    return read_text_proto("model_config_file", path, model_server_config_pb2.ModelServerConfig())


def read_session_config_file(path: str) -> config_pb2.ConfigProto | None:
    """The ConfigProto `--tensorflow_session_config_file` names, or None when it names none."""
    if not path:
        return None
    return read_text_proto("tensorflow_session_config_file", path, config_pb2.ConfigProto())


def read_text_proto(flag: str, path: str, proto: _Message) -> _Message:
    """Fills ``proto`` from a protobuf text-format file named by ``--flag``; raises StartupError
    naming the flag, the file and what is wrong with it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise StartupError(f"--{flag}: cannot read '{path}': {reason}") from exc
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as exc:
        kind = proto.DESCRIPTOR.full_name
        raise StartupError(
            f"--{flag}: Invalid protobuf file: '{path}': Error parsing text-format {kind}: {exc}"
        ) from exc
    return proto


def build_single_model_config(
    model_name: str, model_base_path: str
) -> model_server_config_pb2.ModelServerConfig:
    """The config tensorflow_model_server builds from --model_name and --model_base_path."""
    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add()
    model.name = model_name
    model.base_path = model_base_path
    model.model_platform = TENSORFLOW_PLATFORM
    return config


def model_definitions_from_config(
    config: model_server_config_pb2.ModelServerConfig,
    allow_version_labels_for_unavailable_models: bool = False,
    is_available: Callable[[str, int], bool] = lambda _name, _version: False,
) -> list[ModelDefinition]:
    """Validates a ModelServerConfig like ServerCore::ReloadConfig and converts it. A label may
    name a version that ``is_available``, or any version with the flag."""
    which = config.WhichOneof("config")
    if which is None:
        # TensorFlow Serving starts and serves nothing ("Taking no action for empty config").
        return []
    if which != "model_config_list":
        raise StartupError("ModelServer does not yet support custom model config.")

    definitions: list[ModelDefinition] = []
    seen: set[str] = set()
    for model in config.model_config_list.config:
        if model.name in seen:
            raise StartupError(f"Illegal to list model {model.name} multiple times in config list")
        seen.add(model.name)
        _check_platform(model)
        if not _is_absolute(model.base_path):
            raise StartupError(
                f"Expected model {model.name} to have an absolute path or URI; "
                f"got base_path()={model.base_path}"
            )
        labels = {str(label): int(version) for label, version in model.version_labels.items()}
        unavailable = sorted(
            (label, version)
            for label, version in labels.items()
            if not is_available(model.name, version)
        )
        if unavailable and not allow_version_labels_for_unavailable_models:
            # At startup no version is loaded yet, so TensorFlow Serving refuses every label
            # unless --allow_version_labels_for_unavailable_models is set.
            label, version = unavailable[0]
            raise StartupError(
                f"Request to assign label to version {version} of model {model.name}, which is "
                f"not currently available for inference (label '{label}'; start with "
                "--allow_version_labels_for_unavailable_models=true to allow it)"
            )
        definitions.append(
            ModelDefinition(
                name=model.name,
                base_path=Path(model.base_path),
                version_policy=_version_policy(model),
                version_labels=labels,
            )
        )
    return definitions


def _check_platform(model: model_server_config_pb2.ModelConfig) -> None:
    # model_type is the deprecated predecessor of model_platform; 1 is TENSORFLOW.
    if model.model_type != 0:
        if model.model_platform:
            raise StartupError(
                "Illegal setting both ModelServerConfig::model_type (deprecated) "
                "and ModelServerConfig::model_platform."
            )
        if model.model_type != 1:
            raise StartupError(
                f"ModelServerConfig::model_type choice {model.model_type} not supported."
            )
        return
    if not model.model_platform:
        raise StartupError(
            "Illegal setting neither ModelServerConfig::model_type (deprecated) "
            "nor ModelServerConfig::model_platform."
        )
    if model.model_platform != TENSORFLOW_PLATFORM:
        raise StartupError(
            f"Model {model.name} requests unsupported platform {model.model_platform}"
        )


def _version_policy(model: model_server_config_pb2.ModelConfig) -> VersionPolicy:
    policy = model.model_version_policy
    which = policy.WhichOneof("policy_choice")
    if which == "all":
        return VersionPolicy(kind="all")
    if which == "specific":
        return VersionPolicy(kind="specific", versions=frozenset(policy.specific.versions))
    # Unset, like latest{} without num_versions, means the newest version only.
    num_versions = policy.latest.num_versions if which == "latest" else 0
    return VersionPolicy(kind="latest", num_versions=num_versions or 1)


def _is_absolute(base_path: str) -> bool:
    # A URI (gs://, s3://) also counts, as in TensorFlow Serving; only local paths are served here.
    return "://" in base_path or os.path.isabs(base_path)
