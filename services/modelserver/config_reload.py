"""Changing the served models at run time, as TensorFlow Serving does it: from a
HandleReloadConfigRequest, or by re-reading --model_config_file every
--model_config_file_poll_wait_seconds."""

from __future__ import annotations

import asyncio
import logging

import tensorflow as tf
from tensorflow_serving.config import model_server_config_pb2

from services.modelserver.config import model_definitions_from_config, read_model_config_file
from services.modelserver.errors import (
    InvalidArgumentError,
    ServingError,
    StartupError,
    TensorFlowRuntimeError,
)
from services.modelserver.manager import ModelManager

logger = logging.getLogger(__name__)


class ConfigReloader:
    """Applies new ModelServerConfigs to the model manager."""

    def __init__(self, manager: ModelManager, allow_labels_for_unavailable: bool) -> None:
        self._manager = manager
        self._allow_labels = allow_labels_for_unavailable
        self._lock = asyncio.Lock()

    async def apply(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        """Serves the config's models; waits until new models are available. Raises
        InvalidArgumentError for a config it refuses, an UNKNOWN error for models that did
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
            failures = await self._manager.reload(definitions)
        if failures:
            raise TensorFlowRuntimeError(
                tf.errors.UNKNOWN,
                f"{len(failures)} model(s) did not become available: "
                + "".join(f"{{{failure}}}, " for failure in failures),
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
                    await self.apply(config)
            except (StartupError, ServingError) as exc:
                logger.error("Not reloading the model config %s: %s", path, exc)
