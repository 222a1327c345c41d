"""Runs the bundled command-line client against a gateway, as a user would."""

from __future__ import annotations

import asyncio
import sys


async def run_client(port: int, *args: str) -> tuple[int, str]:
    """`python -m services.client --target=localhost:<port> <args>`: exit code and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.client",
        f"--target=localhost:{port}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()
