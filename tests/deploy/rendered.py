"""Renders the kustomizations under k8s/ with kubectl's kustomize, as `kubectl apply -k` would."""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
OVERLAYS = ("gpu", "cpu")
OVERLAY_PATHS = tuple(f"overlays/{name}" for name in OVERLAYS)
# Every kustomization a user applies: what outlives a deploy, the serving overlays, the
# training Jobs, the load test.
KUSTOMIZATIONS = ("foundation", *OVERLAY_PATHS, "training", "loadtest")
KUBERNETES_VERSION = "1.37"
# The oldest Kubernetes the manifests work on (the README says so): the preStop `sleep` action
# is on by default from 1.30.
KUBERNETES_MIN_VERSION = "1.30"
# Optional parts a user adds to a kustomization's `components:`, for what depends on the
# cluster: k8s/components/<group>/<choice>/. A kustomization takes at most one choice of a
# group; these are the kustomizations each group is meant for.
COMPONENT_GROUPS: dict[str, tuple[str, ...]] = {
    "storage": ("foundation",),
    # Prometheus Operator's scrape configs and alerts.
    "monitoring": OVERLAY_PATHS,
    # A way in from outside the cluster to the gateway's gRPC API.
    "exposure": OVERLAY_PATHS,
    # What scales the gateway instead of the base's HorizontalPodAutoscaler.
    "autoscaling": OVERLAY_PATHS,
}

Manifest = dict[str, Any]


def tool(name: str) -> str:
    """A command from this environment's bin folder (pip installs kubectl and hadolint there),
    else from PATH."""
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    assert found, f"{name} is not installed: `make venv` installs it"
    return found


@functools.cache
def render(kustomization: str, components: tuple[str, ...] = ()) -> tuple[Manifest, ...]:
    """What `kubectl apply -k k8s/<kustomization>` applies, with the named components
    (`group/choice`) added to its `components:` as the README's steps say."""
    if not components:
        return _kustomize(K8S / kustomization)
    with tempfile.TemporaryDirectory() as folder:
        # kustomize takes only relative paths to other kustomizations.
        def relative(path: Path) -> str:
            return os.path.relpath(path, folder)

        top = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [relative(K8S / kustomization)],
            "components": [relative(K8S / "components" / name) for name in components],
        }
        (Path(folder) / "kustomization.yaml").write_text(yaml.safe_dump(top))
        return _kustomize(Path(folder))


def component_choices(group: str) -> tuple[str, ...]:
    """The components of a group, as `group/choice`."""
    folder = K8S / "components" / group
    return tuple(
        f"{group}/{path.parent.name}" for path in sorted(folder.glob("*/kustomization.yaml"))
    )


def component_combinations() -> Iterator[tuple[str, tuple[str, ...]]]:
    """(kustomization, components) for every kustomization and every way of choosing at most
    one component of each group meant for it."""
    for kustomization in KUSTOMIZATIONS:
        groups = [g for g, targets in COMPONENT_GROUPS.items() if kustomization in targets]
        options = [(None, *component_choices(group)) for group in groups]
        for chosen in itertools.product(*options):
            picked = tuple(name for name in chosen if name is not None)
            if picked:
                yield kustomization, picked


def _kustomize(folder: Path) -> tuple[Manifest, ...]:
    output = subprocess.run(
        [tool("kubectl"), "kustomize", str(folder)],
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
