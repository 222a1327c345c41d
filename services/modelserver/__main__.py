"""`python -m services.modelserver` / `tensorflow_model_server`: run the model server.

Prints "Model server listening on port N" on stdout once models are loaded, so that a parent
process started with --port=0 learns the port; stops gracefully on SIGINT and SIGTERM.
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

# In-flight calls get this long to finish after a stop signal.
STOP_GRACE_SECONDS = 10.0


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
    try:
        asyncio.run(_serve(settings))
    except StartupError as exc:
        logger.error("Failed to start server. Error: %s", exc)
        raise SystemExit(1) from None


async def _serve(settings: ModelServerSettings) -> None:
    from services.modelserver.server import start_model_server  # imports TensorFlow

    handle = await start_model_server(settings)
    message = f"Model server listening on port {handle.port}"
    logger.info(message)
    print(message, flush=True)

    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop_requested.set)
    try:
        await stop_requested.wait()
        logger.info("Stop requested; finishing in-flight calls")
    finally:
        await handle.stop(STOP_GRACE_SECONDS)


def _describe(error: ValidationError) -> str:
    problems = []
    for problem in error.errors():
        flag = ".".join(str(part) for part in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        problems.append(f"--{flag}: {message}" if flag else message)
    return "; ".join(problems)


if __name__ == "__main__":
    main()
