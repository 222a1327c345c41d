"""The gateway's log lines: the request id where a line belongs to a call, nothing where not."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from services.gateway.logs import current_request_id, log_handler

log = logging.getLogger("services.gateway.test_logs")


def logged_outside_and_inside_a_call(logger: logging.Logger, log_format: str) -> list[str]:
    """The lines of one record outside any call, then one in the call "trace-7"."""
    stream = io.StringIO()
    logger.addHandler(log_handler(log_format, stream))  # type: ignore[arg-type]
    logger.info("serving")
    token = current_request_id.set("trace-7")
    try:
        logger.info("answered")
    finally:
        current_request_id.reset(token)
    return stream.getvalue().splitlines()


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    saved = log.level, log.propagate
    log.setLevel(logging.INFO)
    log.propagate = False
    yield log
    log.handlers.clear()
    log.level, log.propagate = saved


def test_a_text_line_names_its_request_and_a_line_outside_any_call_names_none(
    logger: logging.Logger,
) -> None:
    outside, inside = logged_outside_and_inside_a_call(logger, "text")
    assert outside.endswith("INFO services.gateway.test_logs: serving")
    assert "None" not in outside and "[" not in outside
    assert inside.endswith("INFO services.gateway.test_logs [trace-7]: answered")


def test_a_json_line_outside_any_call_has_no_request_id(logger: logging.Logger) -> None:
    outside, inside = map(json.loads, logged_outside_and_inside_a_call(logger, "json"))
    assert "request_id" not in outside and outside["message"] == "serving"
    assert inside["request_id"] == "trace-7"
