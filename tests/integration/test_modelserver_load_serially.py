"""Versions load one at a time, whatever thread asks: TensorFlow's Python graph import crashed
the model server with SIGSEGV when five models loaded at once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import tensorflow as tf
from tf_serving_testdata import TESTDATA, needs_testdata

from services.modelserver.servable import load_servable

pytestmark = needs_testdata


class OverlapCounter:
    """Wraps TensorFlow's SavedModel loader and records how many of its calls ran at once."""

    def __init__(self, load: Any) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._running = 0
        self.most_at_once = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._running += 1
            self.most_at_once = max(self.most_at_once, self._running)
        try:
            time.sleep(0.05)  # long enough for the other threads to arrive, were they let in
            return self._load(*args, **kwargs)
        finally:
            with self._lock:
                self._running -= 1


def test_versions_asked_for_by_four_threads_load_one_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counter = OverlapCounter(tf.compat.v1.saved_model.load)
    monkeypatch.setattr(tf.compat.v1.saved_model, "load", counter)
    version_dir: Path = TESTDATA / "saved_model_half_plus_two_cpu" / "00000123"
    with ThreadPoolExecutor(max_workers=4) as pool:
        servables = list(pool.map(lambda n: load_servable(f"m{n}", 123, version_dir), range(4)))
    assert counter.most_at_once == 1
    assert [servable.name for servable in servables] == ["m0", "m1", "m2", "m3"]
