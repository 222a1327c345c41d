"""The Keras model: ``SkipGram`` holds the word and context embeddings, and its ``train_step``
contrasts each true (word, context) pair with negatives drawn from the unigram table, with the
loss summed over the batch as word2vec's own SGD steps are."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


class SkipGram(keras.Model):
    """Word and context embeddings; the loss contrasts each true pair with sampled negatives."""

    def __init__(
        self, vocabulary_size: int, dimensions: int, negatives: int, unigram: np.ndarray
    ) -> None:
        super().__init__(name="skip_gram")
        self.negatives = negatives
        self.words = keras.layers.Embedding(
            vocabulary_size,
            dimensions,
            embeddings_initializer=keras.initializers.RandomUniform(
                -0.5 / dimensions, 0.5 / dimensions
            ),
            name="word_embedding",
        )
        self.contexts = keras.layers.Embedding(
            vocabulary_size, dimensions, embeddings_initializer="zeros", name="context_embedding"
        )
        self.unigram = tf.constant(unigram)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        # Both tables, though a call uses only the word one: train_step reads the contexts.
        self.words.build(input_shape)
        self.contexts.build(input_shape)
        self.built = True

    def call(self, words: tf.Tensor) -> tf.Tensor:
        return self.words(words)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.loss_tracker]

    def train_step(self, data: tuple[tf.Tensor, tf.Tensor]) -> dict[str, tf.Tensor]:
        words, contexts = data
        batch = tf.shape(words)[0]
        draws = tf.random.uniform(
            [batch, self.negatives],
            maxval=tf.shape(self.unigram, out_type=tf.int64)[0],
            dtype=tf.int64,
        )
        candidates = tf.concat([contexts[:, tf.newaxis], tf.gather(self.unigram, draws)], axis=1)
        labels = tf.concat([tf.ones([batch, 1]), tf.zeros([batch, self.negatives])], axis=1)
        with tf.GradientTape() as tape:
            logits = tf.einsum("bd,bkd->bk", self.words(words), self.contexts(candidates))
            # Summed, not averaged, over the batch: each pair moves the vectors as much as one
            # step of word2vec's own SGD would.
            loss = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels, logits))
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        self.loss_tracker.update_state(loss / tf.cast(batch, tf.float32))
        return {"loss": self.loss_tracker.result()}
