"""A DNS name whose answer a test controls, for a gateway process in front of replicas that come
and go, as a headless Service's endpoints do in Kubernetes; and model-server replicas that each
listen on an address of their own (127.0.0.2, 127.0.0.3, ...) on one shared port, as pods do.

Run as `python -m tests.reliability.fake_dns <name> <answer file> <gateway flags>`, it starts a
gateway whose resolver answers `name` with the addresses in the file (one a line, read at every
lookup; none: the name does not resolve) and every other name as usual. The test rewrites the
file to remove a replica from the answer or add one."""

from __future__ import annotations

import os
import socket
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.suite.children import Child
from services.suite.model_config import METRICS_PATH, write_model_config, write_monitoring_config

# Every loopback address reaches this machine; each replica gets one, as each pod has its own.
REPLICA_HOSTS = tuple(f"127.0.0.{n}" for n in range(2, 255))
START_S = 120
REQUEST_COUNT = ":tensorflow:serving:request_count"


class DnsAnswer:
    """The file a fake-DNS gateway reads its answer from."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.set([])

    def set(self, hosts: list[str]) -> None:
        """What the name resolves to from the gateway's next lookup on; written whole at once."""
        partial = self.path.with_suffix(".partial")
        partial.write_text("".join(f"{host}\n" for host in hosts))
        os.replace(partial, self.path)


@dataclass
class Replica:
    """A model server on an address of its own, with its REST port for the metrics."""

    host: str
    rest_port: int
    process: Child

    def served(self) -> int:
        """Inference calls it has answered, from its Prometheus request count."""
        url = f"http://{self.host}:{self.rest_port}{METRICS_PATH}"
        with urllib.request.urlopen(url, timeout=10) as page:
            text = page.read().decode()
        return sum(
            int(float(line.rsplit(" ", 1)[1]))
            for line in text.splitlines()
            if line.startswith(REQUEST_COUNT + "{")
        )


def start_replica(
    repository: Path, host: str, port: int, rest_port: int, models: Sequence[str]
) -> Replica:
    """A model server for `models` listening on host:port; returns once its models are loaded
    (the moment a pod turns ready and joins the endpoints)."""
    config = write_model_config(repository, models)
    process = Child(
        f"modelserver {host}",
        "services.modelserver",
        [
            f"--host={host}",
            f"--port={port}",
            f"--rest_api_port={rest_port}",
            f"--monitoring_config_file={write_monitoring_config(repository)}",
            f"--model_config_file={config}",
            "--enable_grpc_healthcheck_service",
            "--max_num_load_retries=0",
        ],
    )
    process.wait_for_port(START_S)
    return Replica(host, rest_port, process)


def start_gateway_resolving(name: str, answer: DnsAnswer, *flags: str) -> Child:
    """A gateway whose resolver answers `name` from `answer`; `wait_for_port` gives its port."""
    return Child(
        "gateway",
        "tests.reliability.fake_dns",
        [
            name,
            str(answer.path),
            "--port=0",
            "--metrics_port=0",
            "--log_level=WARNING",
            *flags,
        ],
    )


def _answering(name: str, answer: Path) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != name:
            return real(host, port, *args, **kwargs)
        hosts = answer.read_text().split()
        if not hosts:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, int(port)))
            for ip in hosts
        ]

    socket.getaddrinfo = getaddrinfo


if __name__ == "__main__":
    from services.gateway.__main__ import main

    _answering(sys.argv[1], Path(sys.argv[2]))
    main(sys.argv[3:])
