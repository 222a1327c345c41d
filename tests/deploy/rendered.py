"""Renders the kustomizations under k8s/ with kubectl's kustomize, as `kubectl apply -k` would."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
OVERLAYS = ("gpu", "cpu")
# Every kustomization a user applies: the serving overlays, the training Jobs, the load test.
KUSTOMIZATIONS = (*(f"overlays/{name}" for name in OVERLAYS), "training", "loadtest")
KUBERNETES_VERSION = "1.37"

Manifest = dict[str, Any]


def tool(name: str) -> str:
    """A command from this environment's bin folder (pip installs kubectl and hadolint there),
    else from PATH."""
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    assert found, f"{name} is not installed: `make venv` installs it"
    return found


@functools.cache
def render(kustomization: str) -> tuple[Manifest, ...]:
    output = subprocess.run(
        [tool("kubectl"), "kustomize", str(K8S / kustomization)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return tuple(doc for doc in yaml.safe_load_all(output) if doc)


def find(manifests: tuple[Manifest, ...], kind: str, name: str) -> Manifest:
    matches = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def config_map(manifests: tuple[Manifest, ...], prefix: str) -> Manifest:
    """A generated ConfigMap, whose name is the generator's plus a content hash."""
    matches = [
        m
        for m in manifests
        if m["kind"] == "ConfigMap" and m["metadata"]["name"].startswith(f"{prefix}-")
    ]
    assert len(matches) == 1, f"expected one ConfigMap {prefix}-<hash>, found {len(matches)}"
    return matches[0]


def pod_specs(manifests: tuple[Manifest, ...]) -> Iterator[tuple[Manifest, Manifest]]:
    """(workload, pod spec) of every Deployment and Job."""
    for manifest in manifests:
        if manifest["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield manifest, manifest["spec"]["template"]["spec"]


def containers(manifests: tuple[Manifest, ...]) -> Iterator[tuple[Manifest, Manifest]]:
    """(workload, container) of every container and init container."""
    for workload, spec in pod_specs(manifests):
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            yield workload, container


def container(manifests: tuple[Manifest, ...], deployment: str) -> Manifest:
    spec = find(manifests, "Deployment", deployment)["spec"]["template"]["spec"]
    (only,) = spec["containers"]
    return dict(only)
