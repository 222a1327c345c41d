"""`python -m services.suite` as a process, with its output kept and searchable as it comes."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
from pathlib import Path

# The banner's line giving the gateway's port.
GATEWAY_LINE = r"gateway \(gateway\.v1\.GatewayService\)\s+localhost:(\d+)"


class SuiteProcess:
    """The suite launcher on a model repository; `await wait_for(pattern)` reads its output."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._new_line = asyncio.Condition()
        self._ended = False
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, models_dir: Path, *flags: str, cwd: Path | None = None) -> SuiteProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.suite",
            f"--models_dir={models_dir}",
            *flags,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=cwd,
        )
        return cls(process)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    async def wait_for(self, pattern: str, timeout_s: float, after: int = 0) -> re.Match[str]:
        """The first match of ``pattern`` in a line from line number ``after`` on, waiting up
        to ``timeout_s`` for it to be printed."""
        compiled = re.compile(pattern)

        def found() -> re.Match[str] | None:
            return next(filter(None, map(compiled.search, self.lines[after:])), None)

        async with self._new_line:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._new_line.wait_for(lambda: found() or self._ended), timeout_s
                )
        match = found()
        assert match, f"the suite did not print /{pattern}/ in {timeout_s} s:\n{self.output}"
        return match

    async def stop(self, timeout_s: float = 60) -> int:
        """SIGTERM, as Ctrl-C or a process manager would stop it; returns its exit code."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.process.wait(), timeout_s)
        await self._reader
        return code

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            async with self._new_line:
                self.lines.append(raw.decode())
                self._new_line.notify_all()
        async with self._new_line:
            self._ended = True
            self._new_line.notify_all()
