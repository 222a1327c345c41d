"""What the rendered NetworkPolicies let into a pod, evaluated as Kubernetes does: a pod that
some policy selects for Ingress takes a connection only if one of those policies' rules admits
both its source and its port. Enough of the API for these manifests: numeric ports, label
selectors, namespace selectors and IP blocks."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Source:
    """Where a connection comes from: a pod (its labels and its namespace's), or an address
    outside the cluster (`address`, e.g. a client behind a load balancer that keeps it)."""

    namespace: str = ""
    namespace_labels: dict[str, str] = field(default_factory=dict)
    pod_labels: dict[str, str] = field(default_factory=dict)
    address: str | None = None

    @classmethod
    def pod_in(cls, namespace: str, labels: dict[str, str] | None = None, **pod: str) -> Source:
        # The API server labels every namespace with its name.
        namespace_labels = {"kubernetes.io/metadata.name": namespace, **(labels or {})}
        return cls(namespace, namespace_labels, dict(pod))

    @classmethod
    def outside(cls, address: str) -> Source:
        return cls(address=address)


def admits(
    manifests: tuple[Manifest, ...],
    namespace: str,
    pod_labels: dict[str, str],
    port: int,
    source: Source,
) -> bool:
    """Whether a pod with these labels in this namespace takes a TCP connection to `port`."""
    policies = [
        m["spec"]
        for m in manifests
        if m["kind"] == "NetworkPolicy"
        and m["metadata"].get("namespace") == namespace
        and "Ingress" in m["spec"].get("policyTypes", ["Ingress"])
        and selects(m["spec"]["podSelector"], pod_labels)
    ]
    if not policies:
        return True  # no policy isolates the pod
    return any(
        _rule_admits(rule, namespace, port, source)
        for policy in policies
        for rule in policy.get("ingress", [])
    )


def selects(selector: Manifest, labels: dict[str, str]) -> bool:
    """A LabelSelector's verdict on a set of labels; `{}` selects everything."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        present = key in labels
        verdict = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]
        if not verdict:
            return False
    return True


def _rule_admits(rule: Manifest, namespace: str, port: int, source: Source) -> bool:
    ports = rule.get("ports")
    if ports and not any(_port_matches(entry, port) for entry in ports):
        return False
    peers = rule.get("from")
    if not peers:
        return True  # from anywhere, inside the cluster or out
    return any(_peer_admits(peer, namespace, source) for peer in peers)


def _port_matches(entry: Manifest, port: int) -> bool:
    assert entry.get("protocol", "TCP") == "TCP", entry
    number = entry.get("port")
    assert number is None or isinstance(number, int), "named ports are not evaluated here"
    if number is None:
        return True
    return number <= port <= entry.get("endPort", number)


def _peer_admits(peer: Manifest, namespace: str, source: Source) -> bool:
    if "ipBlock" in peer:
        if source.address is None:
            return False  # pod-to-pod traffic is judged by the selectors, not by pod IPs here
        address = ipaddress.ip_address(source.address)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(excluded) for excluded in block.get("except", [])
        )
    if source.address is not None:
        return False  # selectors match pods, never addresses outside the cluster
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], source.namespace_labels):
            return False
    elif source.namespace != namespace:
        return False  # a podSelector alone means pods of the policy's own namespace
    return selects(peer.get("podSelector", {}), source.pod_labels)
