"""One configured model as the model manager keeps it, and what that says about its availability.

A `ModelSlot` is the manager's record of a model: its definition, the versions that serve, the
status of every version seen, the versions that failed to load and those still being written.
It is read and changed on the event loop only. From it come TensorFlow Serving's answers for a
model that does not serve: whether it has given up (its newest version failed for good) and why
it did not become available.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from services.modelserver.config import ModelDefinition
from services.modelserver.repository import Fingerprint
from services.modelserver.servable import Servable
from services.modelserver.versions import VersionState, VersionStatus


@dataclass
class ModelSlot:
    """The state of one configured model's versions."""

    definition: ModelDefinition
    serving: Mapping[int, Servable] = field(default_factory=dict)
    statuses: dict[int, VersionStatus] = field(default_factory=dict)
    # Wanted versions whose loading failed for good, with their directory's fingerprint then;
    # retried once the directory changes (a copy that was not finished) or comes back.
    failed: dict[int, Fingerprint] = field(default_factory=dict)
    # Versions seen on disk whose files were still changing at the last poll.
    unsettled: set[int] = field(default_factory=set)
    problem: str | None = None  # what is wrong with the base path, as last logged
    available: bool | None = None  # as last reported to the listener
    # Held while the model is reconciled or removed: the poller and a reload take turns.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def name(self) -> str:
        return self.definition.name

    def gave_up(self) -> bool:
        """No version serves and the newest one seen has ended in an error (TensorFlow
        Serving's Latest(model) reaching END)."""
        if self.serving or not self.statuses:
            return False
        newest = self.statuses[max(self.statuses)]
        return newest.state is VersionState.END and newest.error_code != 0

    def why_unavailable(self) -> str:
        """The model and why no version of it serves, as unavailable_models_message lists it."""
        messages = [status.error_message for status in self.statuses.values() if status.error_code]
        reason = self.problem or "; ".join(messages) or "no version loaded"
        return f"{{name: {self.name}}} due to error: {reason}"


def unavailable_models_message(failures: Sequence[str]) -> str:
    """TensorFlow Serving's error for models that did not load, at start-up or on a reload."""
    return f"{len(failures)} model(s) did not become available: " + "".join(
        f"{{{failure}}}, " for failure in failures
    )


class ModelsUnavailableError(Exception):
    """A configured model cannot serve: its newest version failed to load for good."""
