"""The flow of a domain core that answers with one model call: prepare the request, pin the
version, get the version's schema, build and check the inputs, call the model, read the outputs.

The core says what each step does (`Steps`, usually the core itself, so every step is a bound
method; the one closure a call builds is the catalog's `on_version` callback, as before);
`SingleCall` runs them in order and times the core's preprocessing as the `preprocess` stage.
The backend times `predict`, the transport `postprocess`. Forecasts make many calls per request
and keep their own flow (forecast.py); so does SimilarWords (words.py), whose analogies search
and check their words in two calls at once.
"""

from __future__ import annotations

import contextlib
import enum
from typing import Generic, Protocol, TypeVar

from services.gateway.backend import ModelServerClient, Prediction
from services.gateway.catalog import ModelCatalog, VersionedCache
from services.gateway.domain import Deadline, Tensors
from services.gateway.metrics import GatewayMetrics

Q_contra = TypeVar("Q_contra", contravariant=True)  # the request, as the transport hands it
P = TypeVar("P")  # the request prepared: what needs no model version done
S = TypeVar("S")  # what one version needs: its signatures and metadata
R_co = TypeVar("R_co", covariant=True)  # the result


class Preprocess(enum.Enum):
    """Which step is timed as the `preprocess` stage: the one that does the core's work on the
    request, so that every call observes the stage once."""

    PREPARE = "prepare"  # before a version is pinned (pictures decoded, in a thread if large)
    INPUTS = "inputs"  # with the version's schema (features ordered by the version's names)


class Steps(Protocol[Q_contra, P, S, R_co]):
    """What one core does at each step of the flow."""

    async def prepare(self, request: Q_contra, deadline: Deadline) -> P:
        """Validates and converts what needs no model version; runs once per request, before
        a version is pinned, so a bad request fails the same whatever is serving."""
        ...

    async def load_schema(self, version: int, deadline: Deadline) -> S:
        """What one version needs, loaded once per version (VersionedCache)."""
        ...

    def inputs(self, version: int, schema: S, prepared: P) -> Tensors:
        """The model call's inputs, checked against the version's signature."""
        ...

    async def outputs(
        self, version: int, schema: S, prepared: P, prediction: Prediction, deadline: Deadline
    ) -> R_co:
        """The result from the call's outputs, checked against the contract; a core with an
        optional second call (Encode's reconstruction errors) makes it here."""
        ...


_UNTIMED = contextlib.nullcontext()


class SingleCall(Generic[Q_contra, P, S, R_co]):
    """Runs one core's steps for each request, on the pinned or the serving version."""

    def __init__(
        self,
        steps: Steps[Q_contra, P, S, R_co],
        *,
        backend: ModelServerClient,
        catalog: ModelCatalog,
        metrics: GatewayMetrics,
        model: str,
        signature: str,
        preprocess: Preprocess,
    ) -> None:
        self._steps = steps
        self._backend = backend
        self._catalog = catalog
        self._metrics = metrics
        self._model = model
        self._signature = signature
        self._preprocess = preprocess
        self.schemas = VersionedCache(steps.load_schema)

    async def run(self, request: Q_contra, pinned: int | None, deadline: Deadline) -> R_co:
        """The result computed by the pinned version, or by the serving one if None."""
        with self._timed(Preprocess.PREPARE):
            prepared = await self._steps.prepare(request, deadline)
        return await self._catalog.on_version(
            self._model, pinned, deadline, lambda version: self._on(version, prepared, deadline)
        )

    async def _on(self, version: int, prepared: P, deadline: Deadline) -> R_co:
        schema = await self.schemas.get(version, deadline)
        with self._timed(Preprocess.INPUTS):
            inputs = self._steps.inputs(version, schema, prepared)
        prediction = await self._backend.predict(
            self._model, version, self._signature, inputs, deadline
        )
        return await self._steps.outputs(version, schema, prepared, prediction, deadline)

    def _timed(self, step: Preprocess) -> contextlib.AbstractContextManager[object]:
        if step is self._preprocess:
            return self._metrics.stage(self._model, "preprocess")
        return _UNTIMED
