"""`make bench`: run the benchmarks and write BENCHMARKS.md.

python -m benchmarks [--models-dir models] [--output BENCHMARKS.md] [--window-s 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--output", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument("--window-s", type=float, default=2.0, help="length of one window")
    options = parser.parse_args(argv)

    from benchmarks import batching
    from benchmarks.harness import Stability
    from benchmarks.machine import machine_facts
    from benchmarks.report import render
    from services.suite.__main__ import train_missing

    models_dir = options.models_dir.resolve()
    train_missing(models_dir, "quick", ["cnn"])
    stability = Stability(window_s=options.window_s)
    with tempfile.TemporaryDirectory() as work_dir:
        results = asyncio.run(batching.run(models_dir, Path(work_dir), stability))
    model_alone = batching.time_model_alone(models_dir)
    command = "make bench"
    report = render(command, machine_facts(), results, model_alone)
    options.output.write_text(report)
    sys.stdout.write(report)


if __name__ == "__main__":
    main()
