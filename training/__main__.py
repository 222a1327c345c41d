"""``python -m training <model> [--profile quick|full] [--models-dir models] [--seed N]``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from training.jobs import JOBS, PROFILES, load_job


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train a model and publish it as a new version in the model repository.",
    )
    models = parser.add_subparsers(dest="model", required=True, metavar="MODEL")
    for name in JOBS:
        job = models.add_parser(name, help=f"train and publish the {name} model")
        job.add_argument("--profile", choices=PROFILES, default="quick", help="default: quick")
        job.add_argument(
            "--models-dir",
            type=Path,
            default=Path("models"),
            help="model repository root; publishes into <models-dir>/<model>/<version>/",
        )
        job.add_argument("--seed", type=int, default=None, help="override the profile's seed")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Before TensorFlow is imported (by the job module): keep its C++ info logs out of the output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = load_job(args.model).run(
        profile=args.profile, models_dir=args.models_dir, seed=args.seed
    )
    print(f"published {args.model} version {result.published.version} at {result.published.path}")
    print(json.dumps(result.metrics_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
