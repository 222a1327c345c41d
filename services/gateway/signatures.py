"""A model version's signatures, read from its live metadata, and inputs checked against them.

TensorFlow Serving checks neither shapes nor dtypes of what it is fed; a wrong shape fails deep
inside the graph with a message no client can act on, or worse, is silently broadcast. The
gateway checks every input against the serving version's SignatureDef first, and names the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from services.gateway import errors
from services.gateway.tensors import dtype_name
from services.generated.tfserving.v1 import get_model_metadata_pb2


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a signature: dtype name and shape (-1: any size; None: any rank)."""

    name: str
    dtype: str
    shape: tuple[int, ...] | None

    @classmethod
    def from_tensor_info(cls, name: str, info: get_model_metadata_pb2.TensorInfo) -> TensorSpec:
        shape = info.tensor_shape
        dims = None if shape.unknown_rank else tuple(dim.size for dim in shape.dim)
        return cls(name, dtype_name(info.dtype), dims)

    def fits(self, shape: tuple[int, ...]) -> bool:
        if self.shape is None:
            return True
        return len(shape) == len(self.shape) and all(
            want in (-1, got) for want, got in zip(self.shape, shape, strict=True)
        )

    def describe(self) -> str:
        dims = "any shape" if self.shape is None else f"[{', '.join(map(str, self.shape))}]"
        return f"{self.dtype} {dims}"


@dataclass(frozen=True)
class Signature:
    """A serving signature: its inputs and outputs by alias."""

    name: str
    inputs: Mapping[str, TensorSpec]
    outputs: Mapping[str, TensorSpec]

    def check_inputs(self, model: str, inputs: Mapping[str, npt.NDArray[Any]]) -> None:
        """Raises ModelContractError when what the gateway built does not fit the signature:
        the gateway's request code and the model's contract disagree."""
        if set(inputs) != set(self.inputs):
            raise errors.ModelContractError(
                f"model {model} signature {self.name} takes inputs {sorted(self.inputs)}, "
                f"not {sorted(inputs)}"
            )
        for alias, array in inputs.items():
            spec = self.inputs[alias]
            if not spec.fits(array.shape) or _dtype_of(array) != spec.dtype:
                raise errors.ModelContractError(
                    f"model {model} signature {self.name} input {alias} is {spec.describe()}; "
                    f"the gateway built {_dtype_of(array)} {list(array.shape)}"
                )


def read_signatures(
    signature_defs: Mapping[str, get_model_metadata_pb2.SignatureDef],
) -> dict[str, Signature]:
    """Every signature of a version, internal ones (``__saved_model_init_op``) left out."""
    return {
        name: Signature(
            name,
            {alias: TensorSpec.from_tensor_info(alias, info) for alias, info in d.inputs.items()},
            {alias: TensorSpec.from_tensor_info(alias, info) for alias, info in d.outputs.items()},
        )
        for name, d in signature_defs.items()
        if not name.startswith("__")
    }


def require(signatures: Mapping[str, Signature], model: str, version: int, name: str) -> Signature:
    """The named signature, or a ModelContractError saying that this version lacks it."""
    signature = signatures.get(name)
    if signature is None:
        raise errors.ModelContractError(
            f"model {model} version {version} has no {name} signature; it has "
            f"{', '.join(sorted(signatures)) or 'none'}"
        )
    return signature


def _dtype_of(array: npt.NDArray[Any]) -> str:
    if array.dtype.kind in "USO":
        return "string"
    return "bool" if array.dtype.kind == "b" else np.dtype(array.dtype).name
