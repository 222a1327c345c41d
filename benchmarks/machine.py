"""The facts a benchmark's numbers depend on, recorded beside them."""

from __future__ import annotations

import os
import platform
from importlib import metadata


def machine_facts() -> dict[str, str]:
    facts = {
        "cpu cores": str(os.cpu_count()),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }
    for package in ("tensorflow", "grpcio", "numpy"):
        facts[package] = metadata.version(package)
    facts["TF threads"] = "intra-op and inter-op: TensorFlow's choice (0)"
    return facts
