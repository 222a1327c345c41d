"""Reading a REST body's JSON without stalling the event loop that also serves gRPC.

`json.loads` holds the GIL for the whole parse (about 0.1 s per MB here), so a worker thread
would stall the loop just the same: a body over INLINE_BODY_BYTES is parsed in a worker
process instead. There, the numeric arrays of a :predict body also become numpy arrays, which
come back as one buffer each rather than as millions of Python objects; the server's process
only copies them. A small body is parsed inline: a process hop costs more than its parse.

This module imports no TensorFlow, so the worker processes start in a moment.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np

from services.modelserver.errors import InvalidArgumentError

# Parsed inline up to this size (well under 1 ms); larger bodies go to a worker process.
INLINE_BODY_BYTES = 64 * 1024
# Worker processes parsing bodies at once; more bodies wait for one.
WORKER_PROCESSES = 2


def decode(raw: bytes, predict: bool = False) -> dict[str, Any]:
    """The body as a JSON object, or InvalidArgumentError with TensorFlow Serving's prefix.
    With ``predict``, rectangular numeric lists of "instances"/"inputs" are numpy arrays."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgumentError(
            f"JSON Parse error: the body is not UTF-8 (byte {exc.start})"
        ) from exc
    if not text.strip():
        raise InvalidArgumentError("JSON Parse error: The document is empty")
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"JSON Parse error: {exc.msg} at offset {exc.pos}") from exc
    except RecursionError as exc:
        raise InvalidArgumentError("JSON Parse error: the document is nested too deeply") from exc
    except ValueError as exc:  # an integer of more digits than Python converts
        raise InvalidArgumentError("JSON Parse error: a number has too many digits") from exc
    if not isinstance(body, dict):
        raise InvalidArgumentError("JSON Parse error: the request body must be a JSON object")
    if predict:
        _arrays_of_predict_body(body)
    return body


def _arrays_of_predict_body(body: dict[str, Any]) -> None:
    instances = body.get("instances")
    if isinstance(instances, list):
        if all(isinstance(row, dict) for row in instances):
            for row in instances:
                _arrays_of_values(row)
        else:
            body["instances"] = _numeric_array(instances)
    inputs = body.get("inputs")
    if isinstance(inputs, dict):
        _arrays_of_values(inputs)
    elif isinstance(inputs, list):
        body["inputs"] = _numeric_array(inputs)


def _arrays_of_values(mapping: dict[str, Any]) -> None:
    for key, value in mapping.items():
        if isinstance(value, list):
            mapping[key] = _numeric_array(value)


def _numeric_array(value: list[Any]) -> Any:
    """The list as a numpy array if it is a rectangular one of numbers; else the list itself,
    which the tensor builder refuses with TensorFlow Serving's message or reads as strings."""
    if not value:
        return value  # empty: its dtype and error message come from the signature
    try:
        array = np.array(value)
    except (TypeError, ValueError, OverflowError, RecursionError):
        return value
    return array if array.dtype.kind in "biuf" else value


def _started_pool() -> ProcessPoolExecutor:
    # spawn: a fork would copy the server's threads and TensorFlow's state.
    pool = ProcessPoolExecutor(WORKER_PROCESSES, mp_context=multiprocessing.get_context("spawn"))
    # The pool starts its processes as work arrives, in the caller's thread; give it work now.
    for future in [pool.submit(int) for _ in range(WORKER_PROCESSES)]:
        future.result()
    return pool


class BodyDecoder:
    """Decodes bodies inline or in worker processes, started on the first big body."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    async def decode(self, raw: bytes, predict: bool = False) -> dict[str, Any]:
        if len(raw) <= INLINE_BODY_BYTES:
            return decode(raw, predict)
        if self._pool is None:
            # Starting processes takes a while: not on the loop.
            pool = await asyncio.to_thread(_started_pool)
            if self._pool is None:
                self._pool = pool
            else:  # another call started one meanwhile
                pool.shutdown(wait=False)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, decode, raw, predict)
        except BrokenProcessPool:
            # A worker died (out of memory?): this call fails, the next one gets new workers.
            self.close()
            raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
