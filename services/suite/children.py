"""Child processes of the local suite: start one, learn its ports, stop it gracefully."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence

from services.suite.noise import without_startup_noise

# What the services print on stdout about the ports they bound, by the flag that sets each:
# "... listening on port N" (the gRPC port), and the gateway's "... metrics at http://host:N/".
_PORT_LINES = {
    "port": re.compile(r"listening on port (\d+)"),
    "metrics_port": re.compile(r"metrics at http://\S+:(\d+)/"),
}
# Time an exited child's status takes to come after its output has ended.
_EXIT_WAIT_S = 5.0


class ChildFailed(RuntimeError):
    """A child process exited or did not report its port in time."""


def describe_exit(code: int) -> str:
    """A child's exit status in words: "code 1", or "signal SIGKILL" for a negative code."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


class Child:
    """A service started as `python -m <module> <flags>`, printing "... listening on port N"."""

    def __init__(self, name: str, module: str, flags: Sequence[str]) -> None:
        self.name = name
        self._process = subprocess.Popen(
            [sys.executable, "-m", module, *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            # A process group of its own: Ctrl-C in a terminal reaches only the suite, which
            # stops its children in order (the gateway first, so that it drains), instead of
            # every child at once, and the model server, which dies of SIGINT at once.
            process_group=0,
        )
        self._ports: dict[str, int] = {}
        self._output_ended = False
        self._changed = threading.Condition()
        threading.Thread(target=self._echo_stdout, daemon=True).start()
        threading.Thread(target=self._echo_stderr, daemon=True).start()

    def wait_for_port(self, timeout_s: float, flag: str = "port") -> int:
        """The port the child bound for ``flag`` ("port": its gRPC port), as it reports it on
        stdout. Raises ChildFailed if it exits first or does not report it in time."""
        with self._changed:
            self._changed.wait_for(lambda: flag in self._ports or self._output_ended, timeout_s)
            if flag in self._ports:
                return self._ports[flag]
            ended = self._output_ended
        if ended:  # it has exited, or is about to: say how
            try:
                code = self._process.wait(_EXIT_WAIT_S)
            except subprocess.TimeoutExpired:
                raise ChildFailed(f"{self.name} closed its output without a port") from None
            raise ChildFailed(f"{self.name} exited with {describe_exit(code)} before it listened")
        raise ChildFailed(f"{self.name} did not report its {flag} within {timeout_s:.0f} s")

    @property
    def pid(self) -> int:
        return self._process.pid

    def exit_code(self) -> int | None:
        return self._process.poll()

    def stop(self, timeout_s: float) -> int:
        """SIGTERM (the gateway drains on it; the model server dies of it, as TensorFlow Serving
        does), then SIGKILL if it takes too long."""
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
            reported = False
            for flag, pattern in _PORT_LINES.items():
                match = pattern.search(line)
                if match:
                    reported = True
                    with self._changed:
                        self._ports.setdefault(flag, int(match.group(1)))
                        self._changed.notify_all()
            if not reported:  # the ports are the parent's to announce
                print(f"[{self.name}] {line}", end="", flush=True)
        with self._changed:
            self._output_ended = True
            self._changed.notify_all()

    def _echo_stderr(self) -> None:
        assert self._process.stderr is not None
        for line in without_startup_noise(self._process.stderr):
            print(f"[{self.name}] {line}", end="", file=sys.stderr, flush=True)
