"""Reading a model's answer: each output the contract promises, with the shape it promises."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy.typing as npt

from services.gateway import errors


def output(
    outputs: Mapping[str, npt.NDArray[Any]],
    name: str,
    model: str,
    shape: tuple[int, ...] | None = None,
) -> npt.NDArray[Any]:
    """The named output, or ModelContractError when it is missing or shaped otherwise."""
    array = outputs.get(name)
    if array is None:
        raise errors.ModelContractError(f"model {model} answered without output {name!r}")
    if shape is not None and array.shape != shape:
        raise errors.ModelContractError(
            f"model {model} answered {name} of shape {list(array.shape)}; expected {list(shape)}"
        )
    return array


def strings(array: npt.NDArray[Any]) -> tuple[str, ...]:
    """A string tensor's values as text."""
    return tuple(item.decode() if isinstance(item, bytes) else str(item) for item in array.ravel())
