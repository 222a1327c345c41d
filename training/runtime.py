"""How a job runs: fixed seeds, and a distribution strategy chosen from the devices it finds.

Device placement is left to TensorFlow. The same job code runs on a laptop CPU, on one GPU, on a
node with several GPUs (MirroredStrategy) and as one worker of a multi-worker Kubernetes Job
(``TF_CONFIG`` set: MultiWorkerMirroredStrategy), without changes.
"""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf


def seed_everything(seed: int) -> None:
    """Python, NumPy and TensorFlow seeds: two runs of one profile give the same metrics."""
    keras.utils.set_random_seed(seed)


def select_strategy() -> tf.distribute.Strategy:
    """The strategy for what this process can see; build and compile models inside its scope."""
    if _is_multi_worker(os.environ.get("TF_CONFIG")):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()  # the default: one device, whatever TensorFlow picks


def _is_multi_worker(tf_config: str | None) -> bool:
    if not tf_config:
        return False
    cluster = json.loads(tf_config).get("cluster", {})
    return sum(len(tasks) for tasks in cluster.values()) > 1
