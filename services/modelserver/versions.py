"""What the model manager says of versions: each one's place in its life cycle, and which
version a request asks for."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from services.common.bounded import shorten


class VersionState(enum.IntEnum):
    """A version's life cycle; the numbers are those of ModelVersionStatus.State."""

    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50


@dataclass(frozen=True)
class VersionStatus:
    """Where a version is in its life cycle; a failed load ends in END with an error."""

    state: VersionState
    error_code: int = 0  # tensorflow.error.Code; 0 is OK
    error_message: str = ""


@dataclass(frozen=True)
class ServableRequest:
    """Which version a request wants: a specific one, or the latest available."""

    name: str
    version: int | None = None

    def describe(self) -> str:
        # TensorFlow Serving's ServableRequest::DebugString, which its NOT_FOUND errors quote.
        if self.version is None:
            return f"Latest({shorten(self.name)})"
        return f"Specific({shorten(self.name)}, {self.version})"
