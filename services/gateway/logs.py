"""The gateway's logs: one JSON object per line, each tagged with the request it belongs to.

A request id comes in the ``x-request-id`` metadata of a call (or is made up when a client sends
none or a malformed one), goes back to the client in the trailing metadata, and travels on every
model server call the request makes, so one id finds a request in the logs of both services.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Literal, TextIO

from pythonjsonlogger.orjson import OrjsonFormatter

REQUEST_ID_KEY = "x-request-id"
LogFormat = Literal["json", "text"]

# Ids from clients are echoed into logs and metadata: keep them short and printable.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")

current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


def request_id_from(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The caller's request id if it sent a well-formed one, a fresh one otherwise."""
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY and isinstance(value, str) and _VALID_REQUEST_ID.fullmatch(value):
            return value
    return uuid.uuid4().hex


def outgoing_metadata() -> tuple[tuple[str, str], ...]:
    """Metadata that carries the current request id on to the model server."""
    request_id = current_request_id.get()
    return () if request_id is None else ((REQUEST_ID_KEY, request_id),)


class _RequestIdField(logging.Filter):
    """Gives a JSON line the `request_id` of the call it belongs to; a line of no call has none."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = current_request_id.get()
        if request_id is not None:
            record.request_id = request_id
        return True


class _RequestIdTag(logging.Filter):
    """Gives a text line ` [id]` after its logger name, or nothing when it belongs to no call."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = current_request_id.get()
        record.request_tag = "" if request_id is None else f" [{request_id}]"
        return True


def configure_logging(level: str, log_format: LogFormat) -> None:
    """Sends every log record to stderr, as JSON lines or as plain text."""
    # The lines name no source line, thread or process, so no record collects them: the
    # settings the logging HOWTO's "Optimization" section gives, for a line on every RPC.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.basicConfig(level=level.upper(), handlers=[log_handler(log_format)], force=True)


def log_handler(log_format: LogFormat, stream: TextIO | None = None) -> logging.Handler:
    """A handler writing to ``stream`` (default stderr) that tags records with the request id."""
    handler = logging.StreamHandler(stream)
    if log_format == "json":
        handler.addFilter(_RequestIdField())
        handler.setFormatter(
            # orjson: half the CPU of the json module for a line, and at DEBUG every RPC has one.
            # A record's extra fields (request_id among them) follow the named ones.
            OrjsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.addFilter(_RequestIdTag())
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s%(request_tag)s: %(message)s")
        )
    return handler
