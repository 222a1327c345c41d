"""Which version of a model the whole fleet of model-server replicas can serve.

Each replica polls the model volume on its own clock, so during a rollout one replica already
has version N+1 while another has only N, and during a withdrawal the other way round. Calls
go round robin, so a version is safe to route to only when every replica holds it. The serving
version is therefore the newest version AVAILABLE on every replica that answers; with the
suite's version policy (the latest two versions stay loaded) one always exists: N until every
replica has N+1, then N+1, never back, except when N+1 is withdrawn.

A replica that fails a status check keeps its last answer for a few checks: a slow check does
not change what the gateway serves. Only an answer changes it, or a replica that keeps failing
(it is gone: round robin sends it nothing either).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from services.gateway.backend import VersionStatus

# A replica whose status checks failed this many times in a row no longer counts.
STALE_AFTER_FAILURES = 3


@dataclass
class ReplicaView:
    """What one replica last said about one model."""

    versions: list[VersionStatus]
    failures: int = 0  # consecutive failed checks since that answer

    @property
    def available(self) -> set[int]:
        return {v.version for v in self.versions if v.state == "AVAILABLE"}


@dataclass
class FleetView:
    """The last answers of every replica about one model."""

    replicas: dict[str, ReplicaView] = field(default_factory=dict)
    newest_served: int = 0  # the newest version ever chosen to serve

    def answered(self, address: str, versions: list[VersionStatus]) -> None:
        """A replica answered (an empty list: it does not have the model)."""
        self.replicas[address] = ReplicaView(versions)

    def failed(self, address: str) -> None:
        """A replica's check failed (timed out, unreachable): its last answer ages."""
        view = self.replicas.get(address)
        if view is not None:
            view.failures += 1

    def keep_only(self, addresses: set[str]) -> None:
        """Forgets replicas the target no longer resolves to."""
        for address in set(self.replicas) - addresses:
            del self.replicas[address]

    def current(self) -> list[ReplicaView]:
        return [v for v in self.replicas.values() if v.failures < STALE_AFTER_FAILURES]

    def choose_serving_version(self) -> int | None:
        """The newest version every counted replica has AVAILABLE. When they share none (a
        policy that keeps one version), the newest of those held by the most replicas: calls
        that meet a replica without it go on to one that has it (`holders`)."""
        views = self.current()
        if not views:
            return None
        common = set.intersection(*(view.available for view in views))
        counts = Counter(version for view in views for version in view.available)
        if common:
            chosen = max(common)
        elif counts:
            chosen = max(counts, key=lambda version: (counts[version], version))
        else:
            return None
        self.newest_served = max(self.newest_served, chosen)
        return chosen

    def holders(self, version: int) -> list[str]:
        """Replicas whose last answer had `version` AVAILABLE."""
        return [
            address
            for address, view in self.replicas.items()
            if view.failures < STALE_AFTER_FAILURES and version in view.available
        ]

    def statuses(self) -> list[VersionStatus]:
        """Every version any replica knows, newest first, in the state every replica reports;
        where they differ, LOADING while it rolls out (newer than any version served so far)
        and UNLOADING as it leaves."""
        views = self.current()
        states: dict[int, list[str]] = {}
        for view in views:
            for status in view.versions:
                states.setdefault(status.version, []).append(status.state)
        merged = []
        for version, seen in sorted(states.items(), reverse=True):
            if len(seen) == len(views) and len(set(seen)) == 1:
                state = seen[0]
            elif version > self.newest_served:
                state = "LOADING"
            else:
                state = "UNLOADING"
            merged.append(VersionStatus(version, state))
        return merged
