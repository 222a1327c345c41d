"""One loaded model version: a TensorFlow session over its SavedModel, and its SignatureDefs.

Like TensorFlow Serving's SavedModelBundle, the version is loaded into a session and run by the
tensor names its SignatureDefs give. That serves TF1 and TF2 exports alike, feeds tensors without
checking their shapes against the placeholders (as TensorFlow Serving does not), and keeps each
version's graph and variables apart. Loading and running are blocking TensorFlow work; callers
use worker threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import tensorflow as tf
from google.protobuf import message, text_format
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2, saved_model_pb2
from tensorflow.python.util import deprecation
from tensorflow_serving.apis import get_model_metadata_pb2

SERVE_TAG = "serve"

# TensorFlow's Python graph import is not safe to run in parallel: five versions loading at once
# crashed the process with SIGSEGV now and then. So versions load one at a time, as TensorFlow
# Serving's do by default (--num_load_threads=0); sessions still run in parallel.
_ONE_LOAD_AT_A_TIME = threading.Lock()

_Runner = Callable[..., list[Any]]


class ServableLoadError(Exception):
    """A version could not be loaded; the code is TensorFlow's (`tensorflow.error.Code`)."""

    def __init__(self, tf_error_code: int, message: str) -> None:
        super().__init__(message)
        self.tf_error_code = tf_error_code
        self.message = message


class Servable:
    """A model version ready to serve. Requests may keep using it after it is swapped out;
    its session closes once the last of them lets go."""

    def __init__(
        self,
        name: str,
        version: int,
        path: Path,
        signature_def_map: get_model_metadata_pb2.SignatureDefMap,
        session: tf.compat.v1.Session,
    ) -> None:
        self.name = name
        self.version = version
        self.path = path
        # Every SignatureDef of the "serve" meta graph, exactly as GetModelMetadata returns them
        # (TensorFlow Serving includes internal ones such as `__saved_model_init_op`).
        self.signature_def_map = signature_def_map
        self._session = session
        # The version's BatchingSession when batching is on; the data plane makes it on first
        # use, so it lives and goes with the version.
        self.batching_session: Any = None
        self._runners: dict[tuple[tuple[str, ...], tuple[str, ...]], _Runner] = {}
        self._runners_lock = threading.Lock()

    def run(self, feeds: Mapping[str, Any], fetches: Sequence[str]) -> list[Any]:
        """Feeds tensors by name and returns the fetched tensors as numpy values, in order.

        Raises tf.errors.OpError when TensorFlow refuses (mistyped feed, bad shape for an op).
        """
        runner = self._runner(tuple(feeds), tuple(fetches))
        return runner(*feeds.values())

    def _runner(self, feeds: tuple[str, ...], fetches: tuple[str, ...]) -> _Runner:
        # A callable per feed/fetch combination, made once: it skips graph lookups and, unlike
        # Session.run, Python-side shape checks, so tensors reach the graph as in TF Serving.
        with self._runners_lock:
            runner = self._runners.get((feeds, fetches))
            if runner is None:
                options = config_pb2.CallableOptions(feed=feeds, fetch=fetches)
                runner = self._session._make_callable_from_options(options)
                self._runners[(feeds, fetches)] = runner
            return runner


def session_config(
    intra_op_threads: int = 0, inter_op_threads: int = 0, base: config_pb2.ConfigProto | None = None
) -> config_pb2.ConfigProto:
    """Every version's session config: ``base`` (--tensorflow_session_config_file's), with
    TensorFlow's thread pools set where the flags give them (0 leaves the base's, or lets
    TensorFlow pick)."""
    config = config_pb2.ConfigProto()
    if base is not None:
        config.CopyFrom(base)
    if intra_op_threads:
        config.intra_op_parallelism_threads = intra_op_threads
    if inter_op_threads:
        config.inter_op_parallelism_threads = inter_op_threads
    return config


def load_servable(
    name: str, version: int, version_dir: Path, config: config_pb2.ConfigProto | None = None
) -> Servable:
    """Loads a SavedModel version directory; raises ServableLoadError with TensorFlow's reason."""
    signature_def_map = read_signature_def_map(version_dir)
    with _ONE_LOAD_AT_A_TIME:
        graph = tf.Graph()
        session = tf.compat.v1.Session(graph=graph, config=config)
        try:
            # TF1's loader on purpose (see the module's docstring): its deprecation notice,
            # logged at every start, is noise to whoever reads the server's log.
            with graph.as_default(), deprecation.silence():
                tf.compat.v1.saved_model.load(session, [SERVE_TAG], str(version_dir))
        except tf.errors.OpError as exc:
            session.close()
            raise ServableLoadError(exc.error_code, exc.message) from exc
        except Exception as exc:  # a corrupt or foreign SavedModel fails in many ways
            session.close()
            raise ServableLoadError(tf.errors.UNKNOWN, f"{type(exc).__name__}: {exc}") from exc
        graph.finalize()  # nothing may add ops to a serving graph
    return Servable(name, version, version_dir, signature_def_map, session)


def read_signature_def_map(version_dir: Path) -> get_model_metadata_pb2.SignatureDefMap:
    """The SignatureDefs of the meta graph tagged exactly {"serve"} in saved_model.pb(txt)."""
    saved_model = _read_saved_model_proto(version_dir)
    for meta_graph in saved_model.meta_graphs:
        if set(meta_graph.meta_info_def.tags) == {SERVE_TAG}:
            return _signature_def_map(meta_graph)
    raise ServableLoadError(
        tf.errors.NOT_FOUND,
        f"Could not find meta graph def matching supplied tags: {{ {SERVE_TAG} }}. "
        "To inspect available tag-sets in the SavedModel, please use the SavedModel CLI: "
        "`saved_model_cli`",
    )


def _read_saved_model_proto(version_dir: Path) -> saved_model_pb2.SavedModel:
    saved_model = saved_model_pb2.SavedModel()
    binary, text = version_dir / "saved_model.pb", version_dir / "saved_model.pbtxt"
    if binary.is_file():
        path, kind = binary, "binary"
    elif text.is_file():
        path, kind = text, "text"
    else:
        raise ServableLoadError(
            tf.errors.NOT_FOUND,
            "Could not find SavedModel .pb or .pbtxt at supplied export directory path: "
            f"{version_dir}",
        )
    try:
        if kind == "binary":
            saved_model.ParseFromString(path.read_bytes())
        else:
            text_format.Parse(path.read_text(encoding="utf-8"), saved_model)
    except (OSError, ValueError, message.DecodeError, text_format.ParseError) as exc:
        # A half-copied or foreign file; TensorFlow's wording.
        raise ServableLoadError(tf.errors.DATA_LOSS, f"Can't parse {path} as {kind} proto") from exc
    return saved_model


def _signature_def_map(
    meta_graph: meta_graph_pb2.MetaGraphDef,
) -> get_model_metadata_pb2.SignatureDefMap:
    signature_def_map = get_model_metadata_pb2.SignatureDefMap()
    for key, signature_def in meta_graph.signature_def.items():
        signature_def_map.signature_def[key].CopyFrom(signature_def)
    return signature_def_map
