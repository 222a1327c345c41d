"""The suite's launcher writes the model config and makes its reload call with messages of its
own (protos/tfserving), so `make run` starts without loading TensorFlow in its own process."""

from __future__ import annotations

import subprocess
import sys


def test_the_suite_launcher_loads_no_tensorflow() -> None:
    check = "import sys, services.suite.__main__; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", check], check=False).returncode == 0
