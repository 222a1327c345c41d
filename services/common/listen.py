"""Opening a server's ports safely: every port either is this server's alone or fails the start.

gRPC sets SO_REUSEPORT on its listening sockets by default, so a second server started on a port
another one already listens on starts without complaint, and the kernel then splits new
connections between the two. Both servers turn that off, and say which port is taken.
"""

from __future__ import annotations

import errno
import socket

import grpc

# The gRPC server option that makes binding a port someone else listens on fail.
NO_PORT_SHARING: tuple[str, int] = ("grpc.so_reuseport", 0)


class ListenError(Exception):
    """A port cannot be listened on; the message names the flag and the port, on one line."""


def grpc_address(host: str, port: int) -> str:
    """host:port as gRPC spells it: an IPv6 address goes in brackets."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def refuse_port_in_use(flag: str, host: str, port: int) -> None:
    """Raises ListenError if something listens on ``port`` at any address ``host`` resolves to.

    It checks every address, as gRPC binds every address of a name ("localhost": 127.0.0.1 and
    ::1) and counts the bind a success if only one of them was free. Port 0 is never in use.
    """
    if port == 0:
        return
    try:
        addresses = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ListenError(f"{flag}: cannot listen on {host} port {port}: {exc}") from exc
    for family, kind, protocol, _, address in addresses:
        with socket.socket(family, kind, protocol) as probe:
            # As the servers bind: a port whose old connections linger in TIME_WAIT is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise ListenError(
                        f"{flag}: port {port} is already in use ({host}); "
                        "stop what listens on it or choose another port"
                    ) from None
                # Anything else (an address this machine lacks) the server's own bind reports.


def add_grpc_port(
    server: grpc.aio.Server,
    flag: str,
    host: str,
    port: int,
    credentials: grpc.ServerCredentials | None = None,
) -> int:
    """Binds ``server`` (made with NO_PORT_SHARING) to host:port; returns the bound port.

    Raises ListenError naming ``flag`` and the port when it is in use or cannot be bound.
    """
    refuse_port_in_use(flag, host, port)
    address = grpc_address(host, port)
    try:
        if credentials is None:
            return server.add_insecure_port(address)
        return server.add_secure_port(address, credentials)
    except RuntimeError as exc:
        # Another server may have taken the port since the check: say so if it did.
        refuse_port_in_use(flag, host, port)
        raise ListenError(f"{flag}: cannot listen on {host} port {port}: {exc}") from exc
