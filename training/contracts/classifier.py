"""The ``classifier`` contract: wine cultivars from raw measurements (training/classifier.py).

- ``serving_default``: ``features`` float32 [-1, n] raw measurements, in the order of the
  ``feature_names`` metadata (``load_wine().feature_names``, n = 13) -> ``probabilities``
  float32 [-1, k] and ``class_ids`` int64 [-1] (k = 3); feature scaling happens inside the graph.
- ``metadata`` (see ``common``): ``rows`` int32 [-1] -> ``feature_names`` string [-1, n] and
  ``class_names`` string [-1, k], the same in every row. Clients read the names per version, so
  they always match the version that answers.
"""

from __future__ import annotations

from training.contracts.common import DEFAULT_SIGNATURE

MODEL_NAME = "classifier"
SERVING_SIGNATURE = DEFAULT_SIGNATURE
FEATURES_INPUT = "features"
PROBABILITIES_OUTPUT = "probabilities"
CLASS_IDS_OUTPUT = "class_ids"
FEATURE_NAMES_METADATA = "feature_names"
CLASS_NAMES_METADATA = "class_names"
