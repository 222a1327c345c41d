"""The value types every domain core shares: the version that answered, the request's deadline,
and the array shapes that pass between the cores, the backend and the transport."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from services.gateway import errors

FloatArray = npt.NDArray[np.float32]
Tensors = dict[str, npt.NDArray[Any]]
"""Named tensors: a model call's inputs or outputs."""


@dataclass(frozen=True)
class ModelVersion:
    """The model version that computed an answer."""

    name: str
    version: int


@dataclass(frozen=True)
class Deadline:
    """An absolute point in time by which a request must be answered, and what set it, for the
    message when it passes."""

    expires_at: float
    origin: str = "the deadline"

    @classmethod
    def after(cls, seconds: float, origin: str | None = None) -> Deadline:
        return cls(time.monotonic() + seconds, origin or f"the {seconds:g} s deadline")

    def remaining(self, subject: str = "the model server") -> float:
        """Seconds left; raises DeadlineExceeded, naming what set it and ``subject``, once none
        are."""
        left = self.expires_at - time.monotonic()
        if left <= 0:
            raise errors.DeadlineExceeded(f"{self.origin} passed before a call to {subject}")
        return left
