"""Validation of wine samples against a classifier version's schema."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.gateway.classifier import ClassifierSchema, WineSample
from services.gateway.errors import InvalidInput

SCHEMA = ClassifierSchema(feature_names=("alcohol", "ash", "hue"), class_names=("a", "b"))


def test_ordered_and_named_samples_stack_in_feature_order() -> None:
    matrix = SCHEMA.to_matrix(
        [
            WineSample(ordered=[1.0, 2.0, 3.0]),
            WineSample(named={"hue": 6.0, "alcohol": 4.0, "ash": 5.0}),
        ]
    )
    assert matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix, [[1, 2, 3], [4, 5, 6]])


@pytest.mark.parametrize(
    ("sample", "field", "reason"),
    [
        (WineSample(ordered=[1.0, 2.0]), "samples[1].ordered.values", "expected 3 values"),
        (WineSample(ordered=[1.0, math.nan, 3.0]), "samples[1].ordered.values[1]", "finite"),
        (WineSample(ordered=[1.0, 2.0, math.inf]), "samples[1].ordered.values[2]", "finite"),
        (WineSample(ordered=[1e39, 2.0, 3.0]), "samples[1].ordered.values[0]", "float32 range"),
        (
            WineSample(named={"alcohol": 1.0, "ash": 2.0, "hue": 3.0, "colour": 4.0}),
            'samples[1].named.values["colour"]',
            "unknown feature",
        ),
        (
            WineSample(named={"alcohol": 1.0}),
            "samples[1].named.values",
            "missing features: ash, hue",
        ),
        (
            WineSample(named={"alcohol": 1.0, "ash": math.nan, "hue": 3.0}),
            'samples[1].named.values["ash"]',
            "finite",
        ),
        (WineSample(), "samples[1]", "set either named or ordered"),
    ],
)
def test_bad_samples_name_the_field_and_the_reason(
    sample: WineSample, field: str, reason: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        SCHEMA.to_matrix([WineSample(ordered=[1.0, 2.0, 3.0]), sample])
    assert raised.value.field == field
    assert reason in raised.value.reason
