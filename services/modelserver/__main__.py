"""`python -m services.modelserver` / `tensorflow_model_server`: run the model server.

Prints "Model server listening on port N" on stdout once models are loaded, so that a parent
process started with --port=0 learns the port.

Like tensorflow_model_server, it has no handler for SIGTERM or SIGINT: the signal ends the
process at once, and the calls in flight fail. Nothing the gateway does may depend on a model
server that drains (DESIGN.md, "Production is a fleet").
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from services.modelserver.errors import StartupError
from services.modelserver.settings import ModelServerSettings, parse_settings

logger = logging.getLogger("services.modelserver")


def main(argv: Sequence[str] | None = None) -> None:
    # Before TensorFlow is first imported (by the server module): keep its C++ logs quiet.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = parse_settings(sys.argv[1:] if argv is None else argv)
    except ValidationError as exc:
        print(f"modelserver: error: {_describe(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    logging.getLogger().setLevel(settings.log_level.upper())
    try:
        asyncio.run(_serve(settings))
    except StartupError as exc:
        logger.error("Failed to start server. Error: %s", exc)
        raise SystemExit(1) from None


async def _serve(settings: ModelServerSettings) -> None:
    _skip_keras()
    from services.modelserver.server import start_model_server  # imports TensorFlow

    # Python turns SIGINT into KeyboardInterrupt; tensorflow_model_server just dies of it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    handle = await start_model_server(settings)
    message = f"Model server listening on port {handle.port}"
    logger.info(message)
    print(message, flush=True)
    await asyncio.Event().wait()  # serves until a signal ends the process


def _skip_keras() -> None:
    """Importing TensorFlow imports Keras' optimizers too, for the SavedModel registry of Keras
    objects: about 40% of the import, and of the time before the server serves. The model
    server loads every version as a TF1 session and runs no Keras, as tensorflow_model_server
    has none, so its process marks that module absent, which TensorFlow's import catches
    (ImportError) and skips. Only here: in-process servers (tests, benchmarks) keep Keras."""
    sys.modules.setdefault("keras.src.optimizers", None)  # type: ignore[arg-type]


def _describe(error: ValidationError) -> str:
    problems = []
    for problem in error.errors():
        flag = ".".join(str(part) for part in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        problems.append(f"--{flag}: {message}" if flag else message)
    return "; ".join(problems)


if __name__ == "__main__":
    main()
