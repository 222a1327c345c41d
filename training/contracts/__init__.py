"""The model contracts: what each exported model serves and what the gateway calls it by.

One module per model (``classifier``, ``cnn``, ``forecaster``, ``word2vec``, ``autoencoder``)
and ``common`` for what every export shares. Training writes its SavedModels with these names
and the gateway calls them with the same ones, so the two cannot drift apart. The modules hold
constants and small frozen dataclasses only and import no TensorFlow (nor anything outside the
standard library): the gateway, which runs without TensorFlow, imports them too, and so does the
model server. Each module's docstring is the contract's one written description.
"""
