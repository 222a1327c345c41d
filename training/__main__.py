"""``python -m training <model>|all [--profile quick|full] [--models-dir models] ...``, or
``python -m training <model> --withdraw VERSION`` to roll a model back."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from training.jobs import JOBS, PROFILES, RunOptions, load_job
from training.publish import PublishError, check_writable, withdraw_version
from training.summary import progress, summary_line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train models and publish each as a new version in the model repository.",
    )
    parser.add_argument("model", choices=[*JOBS, "all"], help="a model, or all five in turn")
    parser.add_argument("--profile", choices=PROFILES, default="quick", help="default: quick")
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=Path("models"),
        help="model repository root; publishes into <models-dir>/<model>/<version>/",
    )
    parser.add_argument(
        "--reports-dir",
        type=Path,
        default=Path("reports"),
        help="TensorBoard logs and pictures go to <reports-dir>/<model>/<run>/",
    )
    parser.add_argument("--seed", type=int, default=None, help="override the profile's seed")
    parser.add_argument(
        "--keras-verbose",
        type=int,
        choices=(0, 1, 2),
        default=2,
        help="Keras' progress: 0 none, 1 a progress bar, 2 one line per epoch (default)",
    )
    parser.add_argument(
        "--withdraw",
        type=int,
        metavar="VERSION",
        help="train nothing: remove this published version of the model (a rollback); model "
        "servers then serve the newest remaining one",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.withdraw is not None:
        if args.model == "all":
            parser.error("--withdraw: name one model")
        try:
            withdraw_version(args.models_dir / args.model, args.withdraw)
        except FileNotFoundError as exc:
            parser.error(f"--withdraw: {exc}")
        print(f"withdrew {args.model} version {args.withdraw}")
        return 0
    # Before TensorFlow is imported (by the job module): keep its C++ info logs out of the output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    options = RunOptions(
        profile=args.profile,
        models_dir=args.models_dir,
        reports_dir=args.reports_dir,
        seed=args.seed,
        verbose=args.keras_verbose,
    )
    names = list(JOBS) if args.model == "all" else [args.model]
    try:
        for name in names:
            check_writable(args.models_dir / name)
    except PublishError as exc:
        print(f"training: error: {exc}", file=sys.stderr)
        return 1
    for position, name in enumerate(names, start=1):
        started = progress(position, len(names), name)
        print(f"{started}  training ({args.profile} profile)", flush=True)
        result = load_job(name).run(options)
        line = summary_line(
            position,
            len(names),
            name,
            result.metrics_dict(),
            result.published.version,
            str(result.reports.directory),
        )
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
