"""Changing the served models at run time, as TensorFlow Serving does it: from a
HandleReloadConfigRequest, or by re-reading --model_config_file every
--model_config_file_poll_wait_seconds.

A reload request comes from any caller of the gRPC port, so the base paths it names must lie
under the roots the operator allows (--model_base_path_allowed_roots; by default the parents of
the start-up config's base paths), compared once symlinks and '..' are resolved: otherwise a
caller could have the server load any SavedModel on disk. The config file poller reads the
operator's own file, as trusted as the start-up config, so it is not bound by the roots.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import tensorflow as tf
from tensorflow_serving.config import model_server_config_pb2

from services.modelserver.config import (
    ModelDefinition,
    model_definitions_from_config,
    read_model_config_file,
)
from services.modelserver.errors import (
    InvalidArgumentError,
    ServingError,
    StartupError,
    TensorFlowRuntimeError,
)
from services.modelserver.manager import ModelManager
from services.modelserver.model_slot import unavailable_models_message

logger = logging.getLogger(__name__)


# A refused path is quoted in the error at most this long; the caller sent it.
_QUOTED_PATH_CHARS = 256


def allowed_roots(
    configured: Sequence[str], startup_definitions: Iterable[ModelDefinition]
) -> list[Path]:
    """The resolved roots reload requests may take base paths from: those configured, or else
    the parents of the start-up base paths (so a model can be added beside the first one)."""
    if configured:
        return [Path(root).resolve() for root in configured]
    parents = {
        definition.base_path.resolve().parent
        for definition in startup_definitions
        if "://" not in str(definition.base_path)
    }
    if Path("/") in parents:
        logger.warning(
            "A start-up base path lies directly under /, so reload requests may load models "
            "from anywhere; name the roots with --model_base_path_allowed_roots"
        )
    return sorted(parents)


def check_base_paths(
    config: model_server_config_pb2.ModelServerConfig, roots: Sequence[Path]
) -> None:
    """Raises InvalidArgumentError naming the first base path that is not under a root. Runs
    off the event loop: resolving a path reads the file system."""
    for index, model in enumerate(config.model_config_list.config):
        if not _is_under(model.base_path, roots):
            path = model.base_path
            if len(path) > _QUOTED_PATH_CHARS:
                path = path[:_QUOTED_PATH_CHARS] + "..."
            raise InvalidArgumentError(
                f"model_config_list.config[{index}].base_path: {path} is not under a directory "
                "the server allows (--model_base_path_allowed_roots)"
            )


def _is_under(base_path: str, roots: Sequence[Path]) -> bool:
    if "://" in base_path:
        return False  # only local paths are served here
    try:
        resolved = Path(base_path).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
        return False
    return any(resolved.is_relative_to(root) for root in roots)


class ConfigReloader:
    """Applies new ModelServerConfigs to the model manager."""

    def __init__(
        self,
        manager: ModelManager,
        allow_labels_for_unavailable: bool,
        allowed_roots: Sequence[Path] = (),
    ) -> None:
        self._manager = manager
        self._allow_labels = allow_labels_for_unavailable
        self._roots = list(allowed_roots)
        self._lock = asyncio.Lock()

    async def apply(
        self, config: model_server_config_pb2.ModelServerConfig, *, from_operator: bool = False
    ) -> None:
        """Serves the config's models; waits until new models are available. Raises
        InvalidArgumentError for a config it refuses (a base path outside the allowed roots,
        unless the config is the operator's own file), an UNKNOWN error for models that did
        not become available."""
        if config.WhichOneof("config") != "model_config_list":
            raise InvalidArgumentError(
                "ServerModelConfig type not supported by HandleReloadConfigRequest. Only "
                "ModelConfigList is currently supported"
            )
        async with self._lock:  # one reload at a time, as ServerCore serialises them
            try:
                definitions = model_definitions_from_config(
                    config, self._allow_labels, self._manager.is_version_available
                )
            except StartupError as exc:
                raise InvalidArgumentError(str(exc)) from exc
            if not from_operator:
                await asyncio.to_thread(check_base_paths, config, self._roots)
            failures = await self._manager.reload(definitions)
        if failures:
            raise TensorFlowRuntimeError(
                tf.errors.UNKNOWN,
                unavailable_models_message(failures),
            )
        logger.info("Model config reloaded: serving %s", ", ".join(self._manager.model_names))

    async def poll_file(self, path: str, interval_s: float) -> None:
        """Re-reads the config file for ever; a change is applied, a broken file is logged and
        leaves the models as they are."""
        last: model_server_config_pb2.ModelServerConfig | None = None
        while True:
            await asyncio.sleep(interval_s)
            try:
                config = read_model_config_file(path)
                if config != last:
                    last = config  # a broken config is reported once, not at every poll
                    await self.apply(config, from_operator=True)
            except (StartupError, ServingError) as exc:
                logger.error("Not reloading the model config %s: %s", path, exc)
