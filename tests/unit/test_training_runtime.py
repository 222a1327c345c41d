"""The distribution strategy a job picks from what it finds, and fixed seeds."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from training.runtime import _is_multi_worker, seed_everything, select_strategy


@pytest.mark.parametrize(
    ("tf_config", "multi_worker"),
    [
        (None, False),
        ("", False),
        (json.dumps({"cluster": {"worker": ["w0:2222"]}, "task": {"type": "worker"}}), False),
        (
            json.dumps({"cluster": {"worker": ["w0:2222", "w1:2222"]}, "task": {"type": "worker"}}),
            True,
        ),
        (
            json.dumps({"cluster": {"chief": ["c:2222"], "worker": ["w0:2222"]}}),
            True,
        ),
    ],
)
def test_tf_config_with_several_tasks_means_multi_worker(
    tf_config: str | None, multi_worker: bool
) -> None:
    assert _is_multi_worker(tf_config) is multi_worker


def test_one_machine_without_gpus_gets_the_default_strategy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
    if tf.config.list_logical_devices("GPU"):
        pytest.skip("this machine has GPUs")
    strategy = select_strategy()
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1


def test_seeds_make_initialisation_repeat() -> None:
    seed_everything(7)
    first = tf.keras.initializers.GlorotUniform()((4, 3)).numpy(), np.random.rand(3)
    seed_everything(7)
    second = tf.keras.initializers.GlorotUniform()((4, 3)).numpy(), np.random.rand(3)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
