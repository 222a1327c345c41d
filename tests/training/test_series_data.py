"""The series the forecaster learns from: AirPassengers offline with its 132/12 split, the sine."""

from __future__ import annotations

import socket
from typing import Any

import numpy as np
import pytest

from training import series
from training.series import SeriesSplit, load_airpassengers_split, load_sine_split, sine_wave


class NetworkUsed(AssertionError):
    pass


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise NetworkUsed("the series loader tried to use the network")


@pytest.fixture
def fresh_split(monkeypatch: pytest.MonkeyPatch) -> SeriesSplit:
    """AirPassengers read from pmdarima again (not from the cache), with the network cut."""
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(socket, "getaddrinfo", _refuse)
    series.clear_cache()
    return load_airpassengers_split()


def test_airpassengers_is_144_months_split_132_12(fresh_split: SeriesSplit) -> None:
    assert fresh_split.name == "airpassengers"
    assert fresh_split.period == 12
    assert fresh_split.train.shape == (132,)
    assert fresh_split.test.shape == (12,)
    assert fresh_split.train.dtype == fresh_split.test.dtype == np.float32
    assert fresh_split.values.shape == (144,)
    assert fresh_split.values.dtype == np.float32


def test_airpassengers_values_are_the_box_jenkins_series(fresh_split: SeriesSplit) -> None:
    # January 1949 onwards, thousands of passengers; the held-out months are all of 1960.
    assert fresh_split.train[:6].tolist() == [112, 118, 132, 129, 121, 135]
    assert fresh_split.train[-1] == 405  # December 1959
    assert fresh_split.test.tolist() == [417, 391, 419, 461, 472, 535, 622, 606, 508, 461, 390, 432]
    assert float(fresh_split.values.sum()) == 40363.0
    assert np.all(fresh_split.values > 0)


def test_split_is_read_only_and_the_same_every_time(fresh_split: SeriesSplit) -> None:
    with pytest.raises(ValueError):
        fresh_split.train[0] = 1.0
    with pytest.raises(ValueError):
        fresh_split.test[0] = 1.0
    again = load_airpassengers_split()
    np.testing.assert_array_equal(again.train, fresh_split.train)
    np.testing.assert_array_equal(again.test, fresh_split.test)


def test_other_holdouts(fresh_split: SeriesSplit) -> None:
    split = load_airpassengers_split(holdout=24)
    assert (len(split.train), len(split.test)) == (120, 24)
    np.testing.assert_array_equal(split.values, fresh_split.values)
    for holdout in (0, 144):
        with pytest.raises(ValueError, match="holdout"):
            load_airpassengers_split(holdout=holdout)


def test_sine_wave_is_the_course_series() -> None:
    x, y = sine_wave()
    assert x.shape == y.shape == (501,)
    assert x.dtype == y.dtype == np.float32
    assert (x[0], x[-1]) == (0.0, 50.0)
    np.testing.assert_allclose(np.diff(x), 0.1, atol=1e-5)
    np.testing.assert_allclose(y, np.sin(np.linspace(0.0, 50.0, 501)), atol=1e-7)


def test_sine_split_holds_out_the_last_50_points() -> None:
    split = load_sine_split()
    assert split.name == "sine"
    assert split.period == 0
    assert (len(split.train), len(split.test)) == (451, 50)
    np.testing.assert_array_equal(split.values, sine_wave()[1])
    assert load_sine_split(holdout=10).test.shape == (10,)
