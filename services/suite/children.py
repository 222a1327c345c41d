"""Child processes of the local suite: start one, learn its port, stop it gracefully."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Sequence
from queue import Empty, Queue

_PORT_LINE = re.compile(r"listening on port (\d+)")


class ChildFailed(RuntimeError):
    """A child process exited or did not report its port in time."""


class Child:
    """A service started as `python -m <module> <flags>`, printing "... listening on port N"."""

    def __init__(self, name: str, module: str, flags: Sequence[str]) -> None:
        self.name = name
        self._process = subprocess.Popen(
            [sys.executable, "-m", module, *flags],
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._ports: Queue[int] = Queue()
        threading.Thread(target=self._echo_stdout, daemon=True).start()

    def wait_for_port(self, timeout_s: float) -> int:
        """The port the child bound, as it reports it on stdout."""
        try:
            return self._ports.get(timeout=timeout_s)
        except Empty:
            code = self._process.poll()
            state = "did not report a port" if code is None else f"exited with code {code}"
            raise ChildFailed(f"{self.name} {state} within {timeout_s:.0f} s") from None

    @property
    def pid(self) -> int:
        return self._process.pid

    def exit_code(self) -> int | None:
        return self._process.poll()

    def stop(self, timeout_s: float) -> int:
        """SIGTERM (the services drain on it), then SIGKILL if it takes too long."""
        if self._process.poll() is None:
            self._process.terminate()
        try:
            return self._process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._process.kill()
            return self._process.wait()

    def kill(self) -> int:
        """SIGKILL: the process gets no chance to drain, as in a crash or an OOM kill."""
        self._process.kill()
        return self._process.wait()

    def _echo_stdout(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            match = _PORT_LINE.search(line)
            if match:
                self._ports.put(int(match.group(1)))
            print(f"[{self.name}] {line}", end="", flush=True)
