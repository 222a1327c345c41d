"""Reaching a server at another address of this machine, to tell what a port listens on."""

from __future__ import annotations

import socket

# Linux routes all of 127.0.0.0/8 to the loopback interface, but a socket bound to 127.0.0.1
# (what "localhost" binds) does not answer at 127.0.0.2, while one bound to every address
# does: a second address of this machine that the test reaches without leaving it.
OTHER_ADDRESS = "127.0.0.2"


def tcp_connects(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=3):
            return True
    except OSError:
        return False
