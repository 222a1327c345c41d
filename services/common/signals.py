"""Waiting for the signals that ask a server to stop."""

from __future__ import annotations

import asyncio
import signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def stop_requested() -> None:
    """Returns once the process gets SIGINT or SIGTERM; the caller then stops its server."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
