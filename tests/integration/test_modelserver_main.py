"""`python -m services.modelserver` as a process: reports its port, serves, and dies of SIGTERM
at once, as tensorflow_model_server does (it has no handler for it)."""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

import grpc
import numpy as np
import tensorflow as tf
from sklearn.datasets import load_wine
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_service_pb2_grpc
from test_imports_without_tensorflow import imported
from tf_serving_testdata import TESTDATA, needs_testdata

from training.contracts import classifier

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120


def run_model_server(
    *flags: str, stderr: IO[str] | int = subprocess.PIPE, python_flags: tuple[str, ...] = ()
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *python_flags, "-m", "services.modelserver", *flags],
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


def first_line(process: subprocess.Popen[str], timeout_s: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout_s)
    assert ready, f"no output within {timeout_s} s"
    return process.stdout.readline()


@needs_testdata
def test_serves_on_the_port_it_prints_and_dies_of_sigterm_without_draining(
    tmp_path: Path,
) -> None:
    base_path = tmp_path / "half_plus_two"
    shutil.copytree(TESTDATA / "saved_model_half_plus_two_cpu", base_path)
    log = (tmp_path / "stderr.log").open("w")
    process = run_model_server(
        "--port=0", "--model_name=half_plus_two", f"--model_base_path={base_path}", stderr=log
    )
    try:
        line = first_line(process, START_TIMEOUT_S)  # printed once the models are loaded
        match = re.fullmatch(r"Model server listening on port (\d+)\n", line)
        assert match, (line, (tmp_path / "stderr.log").read_text())

        request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="half_plus_two"))
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([[1.0]], np.float32)))
        with grpc.insecure_channel(f"localhost:{match.group(1)}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            response = stub.Predict(request, timeout=10)
        assert list(response.outputs["y"].float_val) == [2.5]

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == -signal.SIGTERM
        assert "Traceback" not in (tmp_path / "stderr.log").read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


def test_serves_a_keras_trained_model_without_importing_keras(
    classifier_repository: Path, tmp_path: Path
) -> None:
    """TensorFlow's import brings Keras in unless told not to, and tensorflow_model_server has
    no Keras: the process loads, warms up and serves a model that Keras trained without it."""
    report = tmp_path / "importtime.log"
    with report.open("w") as stderr:
        process = run_model_server(
            "--port=0",
            f"--model_name={classifier.MODEL_NAME}",
            f"--model_base_path={classifier_repository / classifier.MODEL_NAME}",
            stderr=stderr,
            python_flags=("-X", "importtime"),
        )
        try:
            match = re.fullmatch(
                r"Model server listening on port (\d+)\n", first_line(process, START_TIMEOUT_S)
            )
            assert match, report.read_text()[-2000:]
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=classifier.MODEL_NAME)
            )
            wine = load_wine()
            features = wine.data[:1].astype(np.float32)
            request.inputs[classifier.FEATURES_INPUT].CopyFrom(tf.make_tensor_proto(features))
            with grpc.insecure_channel(f"localhost:{match.group(1)}") as channel:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                response = stub.Predict(request, timeout=10)
            probabilities = tf.make_ndarray(response.outputs[classifier.PROBABILITIES_OUTPUT])
            assert probabilities.shape == (1, len(wine.target_names))
        finally:
            process.kill()
            process.wait()
    modules = imported(report.read_text())
    assert "tensorflow" in modules
    assert not {name for name in modules if name.split(".")[0] in ("keras", "tf_keras")}


@needs_testdata
def test_bad_model_config_exits_with_an_error_naming_the_file() -> None:
    bad = TESTDATA / "bad_model_config.txt"
    process = run_model_server("--port=0", f"--model_config_file={bad}")
    _, stderr = process.communicate(timeout=START_TIMEOUT_S)
    assert process.returncode == 1
    assert "Failed to start server" in stderr
    assert str(bad) in stderr


def test_missing_model_source_is_a_usage_error() -> None:
    process = run_model_server("--port=0")
    _, stderr = process.communicate(timeout=START_TIMEOUT_S)
    assert process.returncode == 2
    assert "--model_config_file or --model_base_path" in stderr
