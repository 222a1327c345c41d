"""`python -m services.gateway [--port=50051] [--model_server=localhost:8500] ...`"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from services.common.signals import stop_requested


def main(argv: Sequence[str] | None = None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Imported here so that TensorFlow's log level applies to the protos it brings along.
    from services.common.listen import ListenError
    from services.gateway.logs import configure_logging
    from services.gateway.settings import GatewaySettings
    from services.gateway.tls import TlsConfigError

    settings = GatewaySettings.from_args(argv)
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(_serve(settings))
    except TlsConfigError as exc:
        print(f"gateway: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except ListenError as exc:
        print(f"gateway: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


log = logging.getLogger("services.gateway")


async def _serve(settings: object) -> None:
    from services.gateway.server import start_gateway
    from services.gateway.settings import GatewaySettings

    assert isinstance(settings, GatewaySettings)
    handle = await start_gateway(settings)
    # A parent process (the suite launcher, tests) reads the bound port from this line.
    print(f"Gateway listening on port {handle.port}", flush=True)
    print(f"Gateway metrics at http://localhost:{handle.metrics_port}/metrics", flush=True)
    await stop_requested()
    log.info("shutting down, draining for %.1f s", settings.shutdown_grace_s)
    await handle.stop(settings.shutdown_grace_s)


if __name__ == "__main__":
    main(sys.argv[1:])
