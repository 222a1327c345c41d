"""The word2vec job: scores beside gensim's, and an export whose signatures answer exactly what
the trained vectors say, in process and as TF Serving loads it."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from saved_models import signature_defs

from services.modelserver.servable import load_servable
from training.contracts.word2vec import MAX_K
from training.warmup import read_warmup_requests
from training.word2vec.config import QUICK
from training.word2vec.data import training_pairs
from training.word2vec.job import TrainResult

K = 5


def spec(info: Any) -> tuple[str, list[int]]:
    return tf.dtypes.as_dtype(info.dtype).name, [dim.size for dim in info.tensor_shape.dim]


def unit_vectors(result: TrainResult) -> np.ndarray:
    vectors = result.embeddings
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def numpy_top_k(result: TrainResult, query: np.ndarray, excluded: set[int], k: int) -> list[str]:
    scores = unit_vectors(result) @ (query / np.linalg.norm(query))
    scores[list(excluded)] = -np.inf
    return [result.vocabulary.words[i] for i in np.argsort(-scores)[:k]]


def decoded(tensor: tf.Tensor) -> list[Any]:
    return [w.decode() if isinstance(w, bytes) else w for w in np.asarray(tensor).ravel()]


@pytest.fixture(scope="module")
def loaded(word2vec_training: TrainResult) -> Any:
    return tf.saved_model.load(str(word2vec_training.published.path))


def test_metrics_next_to_gensim(word2vec_training: TrainResult) -> None:
    metrics = json.loads((word2vec_training.published.path / "metrics.json").read_text())
    assert metrics == word2vec_training.metrics_dict()
    assert metrics["profile"] == "quick"
    assert metrics["corpus"]["name"] == "lee"
    assert metrics["spearman"] > 0
    assert metrics["peer"]["name"] == "gensim_word2vec"
    assert metrics["ratio_to_peer"] == pytest.approx(
        metrics["spearman"] / metrics["peer"]["spearman"]
    )
    assert 0 < metrics["analogies"]["answered"] <= metrics["analogies"]["total"] == 19544
    assert 0 <= metrics["wordsim"]["oov_ratio"] < 1


def test_training_pairs_stay_within_the_window() -> None:
    document = np.arange(50, dtype=np.int32)
    counts = np.full(50, 1_000_000, np.int64)  # nothing is subsampled away at this rate...
    config = QUICK.__class__(**{**QUICK.__dict__, "sample": 1.0})
    words, contexts = training_pairs([document], counts, config, np.random.default_rng(0))
    assert len(words) == len(contexts) > 0
    assert np.all(np.abs(words - contexts) <= config.window)
    assert np.all(words != contexts)


def test_signature_defs_match_the_contract(word2vec_training: TrainResult) -> None:
    signatures = signature_defs(word2vec_training.published.path)
    dims = word2vec_training.metrics.dimensions
    similar = signatures["similar"]
    assert {n: spec(i) for n, i in similar.inputs.items()} == {
        "words": ("string", [-1]),
        "k": ("int32", [-1]),
    }
    assert {n: spec(i)[0] for n, i in similar.outputs.items()} == {
        "neighbors": "string",
        "scores": "float32",
        "known": "bool",
    }
    assert set(signatures["analogy"].inputs) == {"positive", "negative", "k"}
    assert set(signatures["analogy"].outputs) == {
        "neighbors",
        "scores",
        "positive_known",
        "negative_known",
    }
    assert spec(signatures["embed"].outputs["embeddings"]) == ("float32", [-1, dims])
    assert set(signatures["metadata"].outputs) == {"vocabulary_size", "dimensions", "max_k"}
    # Batchable by TensorFlow Serving: the batch is the 0th dimension of every input.
    for name in ("similar", "analogy", "embed", "metadata"):
        inputs = signatures[name].inputs.values()
        assert inputs
        assert all(spec(info)[1][:1] == [-1] for info in inputs)


def test_similar_is_the_cosine_top_k_of_the_trained_vectors(
    word2vec_training: TrainResult, loaded: Any
) -> None:
    words = list(word2vec_training.vocabulary.words[:3])
    out = loaded.signatures["similar"](words=tf.constant(words), k=tf.constant([K, 2, 1]))
    assert np.asarray(out["known"]).tolist() == [True, True, True]
    assert out["neighbors"].shape == (3, K)  # the largest k of the batch
    unit = unit_vectors(word2vec_training)
    for row, word in enumerate(words):
        index = word2vec_training.vocabulary.words.index(word)
        expected = numpy_top_k(word2vec_training, unit[index], {index}, K)
        assert decoded(out["neighbors"][row]) == expected
    scores = np.asarray(out["scores"])
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    assert np.all(np.abs(scores) <= 1.0 + 1e-5)


def test_raw_words_normalise_and_unknown_words_are_reported(loaded: Any) -> None:
    out = loaded.signatures["similar"](
        words=tf.constant(["police", "  «Police,»", "POLICE", "qwertyuiopasdf"]),
        k=tf.constant([K] * 4),
    )
    assert np.asarray(out["known"]).tolist() == [True, True, True, False]
    neighbors = [decoded(out["neighbors"][i]) for i in range(3)]
    assert neighbors[0] == neighbors[1] == neighbors[2]


def test_analogy_is_3cosadd_without_the_input_words(
    word2vec_training: TrainResult, loaded: Any
) -> None:
    vocabulary = word2vec_training.vocabulary.words
    positive, negative = ["government", "australia"], ["police"]
    # Two queries in one batch: this one, padded with "", and another of wider rows.
    out = loaded.signatures["analogy"](
        positive=tf.constant([[*positive, ""], ["fire", "police", "government"]]),
        negative=tf.constant([[*negative, ""], ["qwertyuiopasdf", "australia"]]),
        k=tf.constant([K, 1]),
    )
    unit = unit_vectors(word2vec_training)
    ids = [vocabulary.index(w) for w in positive + negative]
    query = unit[ids[0]] + unit[ids[1]] - unit[ids[2]]
    assert decoded(out["neighbors"][0]) == numpy_top_k(word2vec_training, query, set(ids), K)
    assert np.asarray(out["positive_known"]).tolist() == [[True, True, True]] * 2
    assert np.asarray(out["negative_known"]).tolist() == [[True, True], [False, True]]


def test_embed_returns_the_trained_rows(word2vec_training: TrainResult, loaded: Any) -> None:
    words = list(word2vec_training.vocabulary.words[10:14])
    out = loaded.signatures["embed"](words=tf.constant(words))
    np.testing.assert_allclose(out["embeddings"], word2vec_training.embeddings[10:14], atol=1e-6)
    metadata = loaded.signatures["metadata"](rows=tf.constant([0, 0]))
    assert np.asarray(metadata["max_k"]).tolist() == [MAX_K, MAX_K]
    assert int(metadata["vocabulary_size"][0]) == len(word2vec_training.vocabulary.words)


def test_loads_as_a_session_bundle_like_tensorflow_serving(
    word2vec_training: TrainResult, loaded: Any
) -> None:
    servable = load_servable("word2vec", 1, word2vec_training.published.path)
    similar = servable.signature_def_map.signature_def["similar"]
    words = np.array([b"police", b"fire"], dtype=object)
    (neighbors,) = servable.run(
        {similar.inputs["words"].name: words, similar.inputs["k"].name: np.full(2, K, np.int32)},
        [similar.outputs["neighbors"].name],
    )
    expected = loaded.signatures["similar"](
        words=tf.constant(["police", "fire"]), k=tf.constant([K, K])
    )
    assert np.asarray(neighbors).tolist() == np.asarray(expected["neighbors"]).tolist()


def test_warmup_requests_cover_every_signature(word2vec_training: TrainResult, loaded: Any) -> None:
    requests = read_warmup_requests(word2vec_training.published.path)
    assert {r.model_spec.signature_name for r in requests} == {
        "similar",
        "analogy",
        "embed",
        "metadata",
    }
    for request in requests:
        inputs = {alias: tf.make_ndarray(proto) for alias, proto in request.inputs.items()}
        assert loaded.signatures[request.model_spec.signature_name](**inputs)


def test_reports(word2vec_training: TrainResult) -> None:
    directory = word2vec_training.reports.directory
    for picture in ("training_curves.png", "word_map.png"):
        assert (directory / picture).read_bytes().startswith(b"\x89PNG")
    assert list((directory / "tensorboard").rglob("events.out.tfevents.*"))
