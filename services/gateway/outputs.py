"""Reading a model's answer: each output the contract promises, with the shape it promises."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from services.gateway import errors
from services.gateway.backend import ModelServerClient
from services.gateway.domain import Deadline
from training.contracts.common import METADATA_ROWS_INPUT
from training.contracts.common import METADATA_SIGNATURE as METADATA_SIGNATURE  # for the cores


def output(
    outputs: Mapping[str, npt.NDArray[Any]],
    name: str,
    model: str,
    shape: tuple[int | None, ...] | None = None,
) -> npt.NDArray[Any]:
    """The named output, or ModelContractError when it is missing or shaped otherwise (None in
    ``shape`` accepts any size in that dimension)."""
    array = outputs.get(name)
    if array is None:
        raise errors.ModelContractError(f"model {model} answered without output {name!r}")
    if shape is not None and not _fits(array.shape, shape):
        raise errors.ModelContractError(
            f"model {model} answered {name} of shape {list(array.shape)}; expected "
            f"{[-1 if size is None else size for size in shape]}"
        )
    return array


async def read_metadata(
    backend: ModelServerClient, model: str, version: int, deadline: Deadline
) -> dict[str, npt.NDArray[Any]]:
    """A version's ``metadata`` signature: one row asked for, and that row of every output.

    The signature takes the batch in a ``rows`` input, like every signature of the contracts,
    so that TensorFlow Serving's batching can serve it (training/contracts/common.py).
    """
    answer = await backend.predict(
        model, version, METADATA_SIGNATURE, {METADATA_ROWS_INPUT: np.zeros(1, np.int32)}, deadline
    )
    for name, array in answer.outputs.items():
        if array.ndim == 0 or array.shape[0] != 1:
            raise errors.ModelContractError(
                f"model {model} version {version} answered metadata {name} of shape "
                f"{list(array.shape)}; expected one row"
            )
    return {name: array[0] for name, array in answer.outputs.items()}


def _fits(shape: tuple[int, ...], expected: tuple[int | None, ...]) -> bool:
    return len(shape) == len(expected) and all(
        want is None or got == want for got, want in zip(shape, expected, strict=True)
    )


def strings(array: npt.NDArray[Any]) -> tuple[str, ...]:
    """A string tensor's values as text."""
    return tuple(item.decode() if isinstance(item, bytes) else str(item) for item in array.ravel())
