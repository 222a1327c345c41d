"""The banner `make run` prints once the suite serves: every address it listens on, as started."""

from __future__ import annotations

from pathlib import Path

from services.suite.__main__ import _banner, _BannerPorts


def test_the_banner_names_every_port_the_suite_serves() -> None:
    text = _banner(_BannerPorts(50123, 9123, 8123, 8124), Path("/models"), [])
    assert "localhost:50123" in text
    assert "http://localhost:9123/metrics" in text  # the gateway's Prometheus endpoint
    assert "localhost:8123" in text
    assert "http://localhost:8124/v1/models/classifier" in text
    assert "http://localhost:8124/monitoring/prometheus/metrics" in text


def test_without_a_rest_port_the_banner_shows_no_rest_address() -> None:
    text = _banner(_BannerPorts(50123, 9123, 8123, 0), Path("/models"), [])
    assert "REST" not in text
    assert "http://localhost:9123/metrics" in text


def test_the_banner_names_the_models_still_training() -> None:
    text = _banner(_BannerPorts(50123, 9123, 8123, 0), Path("/models"), ["cnn", "word2vec"])
    assert "Still training cnn, word2vec" in text
    assert "UNAVAILABLE" in text
    assert "Still training" not in _banner(_BannerPorts(50123, 9123, 8123, 0), Path("/m"), [])
