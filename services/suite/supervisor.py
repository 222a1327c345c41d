"""Keeps a service of the local suite running: a child that dies unexpectedly is started again,
after a pause that doubles while it keeps failing, on the ports it had.

One crashed child must not take the other down with it: a gateway that dies is restarted while
the model server keeps its loaded models, and a model server that dies comes back behind a
gateway that never stopped (it answers UNAVAILABLE meanwhile, as with a lost replica).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from services.suite.children import Child, describe_exit


@dataclass(frozen=True)
class Backoff:
    """Pauses before restarts: ``first_s``, doubling up to ``longest_s`` while the child keeps
    dying; back to ``first_s`` once a run has lasted ``stable_s``."""

    first_s: float = 1.0
    longest_s: float = 30.0
    stable_s: float = 60.0

    def pause_s(self, previous_s: float | None, ran_s: float) -> float:
        """The pause after a run of ``ran_s`` seconds, when the last one was ``previous_s``
        (None: the child never died before)."""
        if previous_s is None or ran_s >= self.stable_s:
            return self.first_s
        return min(previous_s * 2, self.longest_s)


class Supervised:
    """A service kept running as a child process, `python -m <module> <flags> --<port flag>=N`.

    A port asked for as 0 is pinned to the one the first run bound, so that a restarted child
    comes back where its clients (and the other service) look for it.
    """

    def __init__(
        self,
        name: str,
        module: str,
        flags: Sequence[str],
        ports: Mapping[str, int],
        backoff: Backoff = Backoff(),
    ) -> None:
        self.name = name
        self.ports = dict(ports)
        self._module = module
        self._flags = list(flags)
        self._backoff = backoff
        self._child: Child | None = None
        self._started_at = 0.0
        self._pause_s: float | None = None
        self._restart_at: float | None = None

    def start(self, timeout_s: float) -> dict[str, int]:
        """Starts the first run and waits until it has reported every port; returns them.
        Raises ChildFailed if it exits first or takes longer than ``timeout_s``."""
        child = self._spawn()
        for flag in self.ports:
            self.ports[flag] = child.wait_for_port(timeout_s, flag)
        print(f"{self.name} is up (pid {child.pid})", flush=True)
        return dict(self.ports)

    @property
    def pid(self) -> int | None:
        """The running child's process id; None while it waits to be restarted."""
        return None if self._child is None else self._child.pid

    def supervise(self) -> None:
        """Call regularly: notices an exit, says so, and restarts once the pause is over."""
        now = time.monotonic()
        if self._restart_at is not None:
            if now >= self._restart_at:
                self._restart_at = None
                print(f"{self.name} restarted (pid {self._spawn().pid})", flush=True)
            return
        code = None if self._child is None else self._child.exit_code()
        if code is None:
            return
        self._child = None
        self._pause_s = self._backoff.pause_s(self._pause_s, now - self._started_at)
        self._restart_at = now + self._pause_s
        print(
            f"{self.name} exited with {describe_exit(code)}; restarting in {self._pause_s:g} s",
            flush=True,
        )

    def stop(self, timeout_s: float) -> None:
        """Stops the child (SIGTERM, then SIGKILL after ``timeout_s``) and any pending restart."""
        self._restart_at = None
        if self._child is not None:
            self._child.stop(timeout_s)

    def _spawn(self) -> Child:
        ports = [f"--{flag}={port}" for flag, port in self.ports.items()]
        self._child = Child(self.name, self._module, [*self._flags, *ports])
        self._started_at = time.monotonic()
        return self._child
