#!/usr/bin/env bash
# `make bench-gpu`, on a machine with an NVIDIA GPU and its driver, and with access to PyPI:
# a virtual environment of its own with TensorFlow's GPU build (the same pinned version, with
# the CUDA libraries from PyPI), then the GPU-against-CPU benchmark. Fits in 10 minutes.
# The packages are the training image's, from its lock (any x86_64 Linux with glibc 2.28+).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-gpu
"${PYTHON:-python3.11}" -m venv "$VENV"   # the project wants Python 3.11
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet --require-hashes --no-deps --only-binary :all: \
    -r requirements/training.txt
"$VENV/bin/python" -m pip install --quiet --no-deps -e .
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONUNBUFFERED=1
timeout 540 "$VENV/bin/python" -m benchmarks.gpu "$@"
