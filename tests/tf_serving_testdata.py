"""Where TensorFlow Serving's own small test models live, and a mark for tests that need them.

The repository is cloned next to `shared/`, which holds them; `TF_SERVING_TESTDATA` points
elsewhere. A clone without them skips those tests and says why, instead of failing on a path.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

_BESIDE_THE_CLONE = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "tf_serving"

TESTDATA = Path(os.environ.get("TF_SERVING_TESTDATA", _BESIDE_THE_CLONE))

needs_testdata = pytest.mark.skipif(
    not (TESTDATA / "saved_model_half_plus_two_cpu").is_dir(),
    reason=f"TensorFlow Serving test data not found at {TESTDATA} (set TF_SERVING_TESTDATA)",
)


def copy_model(testdata_name: str, destination: Path) -> Path:
    """A writable copy of one of the test models (the shared folder is read-only)."""
    shutil.copytree(TESTDATA / testdata_name, destination, copy_function=shutil.copyfile)
    for path in [destination, *destination.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return destination
