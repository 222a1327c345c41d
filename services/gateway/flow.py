"""The flow of a domain core that answers with one model call: prepare the request, pin the
version, get the version's schema, build and check the inputs, call the model, read the outputs.

Such a core subclasses `SingleCallCore` and writes what each step does as a method (`prepare`,
`load_schema`, `inputs`, `outputs`); `SingleCallCore.run` calls them in order (the one closure a
call builds is the catalog's `on_version` callback, as before) and times the core's
preprocessing as the `preprocess` stage. The backend times `predict`, the transport
`postprocess`. Forecasts make many calls per request and keep their own flow (forecast.py); so
does SimilarWords (words.py), whose analogies search and check their words in two calls at once.
"""

from __future__ import annotations

import abc
import contextlib
import enum
from typing import Generic, TypeVar

from services.gateway.backend import ModelServerClient, Prediction
from services.gateway.catalog import ModelCatalog, VersionedCache
from services.gateway.domain import Deadline, Tensors
from services.gateway.metrics import GatewayMetrics

Q = TypeVar("Q")  # the request, as the transport hands it
P = TypeVar("P")  # the request prepared: what needs no model version done
S = TypeVar("S")  # what one version needs: its signatures and metadata
R = TypeVar("R")  # the result


class Preprocess(enum.Enum):
    """Which step is timed as the `preprocess` stage: the one that does the core's work on the
    request, so that every call observes the stage once."""

    PREPARE = "prepare"  # before a version is pinned (pictures decoded, in a thread if large)
    INPUTS = "inputs"  # with the version's schema (features ordered by the version's names)


_UNTIMED = contextlib.nullcontext()


class SingleCallCore(abc.ABC, Generic[Q, P, S, R]):
    """A domain core that answers each request with one call of ``signature`` of ``model``, on
    the pinned or the serving version; the subclass writes the steps. ``schemas`` holds what
    each version needs (`load_schema`), loaded once per version."""

    def __init__(
        self,
        backend: ModelServerClient,
        catalog: ModelCatalog,
        metrics: GatewayMetrics,
        model: str,
        signature: str,
        preprocess: Preprocess,
    ) -> None:
        self._backend = backend
        self._catalog = catalog
        self._metrics = metrics
        self._model = model
        self._signature = signature
        self._preprocess = preprocess
        self.schemas = VersionedCache(self.load_schema)

    async def run(self, request: Q, pinned: int | None, deadline: Deadline) -> R:
        """The result computed by the pinned version, or by the serving one if None."""
        with self._timed(Preprocess.PREPARE):
            prepared = await self.prepare(request, deadline)
        return await self._catalog.on_version(
            self._model, pinned, deadline, lambda version: self._on(version, prepared, deadline)
        )

    @abc.abstractmethod
    async def prepare(self, request: Q, deadline: Deadline) -> P:
        """Validates and converts what needs no model version; runs once per request, before
        a version is pinned, so a bad request fails the same whatever is serving."""

    @abc.abstractmethod
    async def load_schema(self, version: int, deadline: Deadline) -> S:
        """What one version needs, loaded once per version (VersionedCache)."""

    @abc.abstractmethod
    def inputs(self, version: int, schema: S, prepared: P) -> Tensors:
        """The model call's inputs, checked against the version's signature."""

    @abc.abstractmethod
    async def outputs(
        self, version: int, schema: S, prepared: P, prediction: Prediction, deadline: Deadline
    ) -> R:
        """The result from the call's outputs, checked against the contract; a core with an
        optional second call (Encode's reconstruction errors) makes it here."""

    async def _on(self, version: int, prepared: P, deadline: Deadline) -> R:
        schema = await self.schemas.get(version, deadline)
        with self._timed(Preprocess.INPUTS):
            inputs = self.inputs(version, schema, prepared)
        prediction = await self._backend.predict(
            self._model, version, self._signature, inputs, deadline
        )
        return await self.outputs(version, schema, prepared, prediction, deadline)

    def _timed(self, step: Preprocess) -> contextlib.AbstractContextManager[object]:
        if step is self._preprocess:
            return self._metrics.stage(self._model, "preprocess")
        return _UNTIMED
