"""Error messages of bounded size, whatever a request carries.

A status message travels in the ``grpc-message`` trailer, percent-encoded, and a client refuses
trailers over its metadata limit (8 KiB by default): a message that echoes a 20 kB name reaches
it as ``RESOURCE_EXHAUSTED`` "Stream removed" instead of the real error. So a value from a
request is shortened before it is quoted, and every message is cut to a size that fits even
when each of its bytes is percent-encoded.
"""

from __future__ import annotations

# Enough to recognise a name by; the rest of a longer value is left out.
ECHO_CHARS = 64
# UTF-8 bytes of a whole message: three times this, percent-encoded, stays under 8 KiB with room
# for the other trailers.
MESSAGE_BYTES = 1024
ELLIPSIS = "…"


def shorten(value: str, limit: int = ECHO_CHARS) -> str:
    """``value`` as it is when it has at most ``limit`` characters; else its start, an ellipsis
    and how long it was, so the message still says which value it was about."""
    if len(value) <= limit:
        return value
    return f"{value[:limit]}{ELLIPSIS} ({len(value)} characters)"


def bound_message(message: str, limit: int = MESSAGE_BYTES) -> str:
    """The message cut to at most ``limit`` UTF-8 bytes (an ellipsis marks a cut). Lone
    surrogates, which UTF-8 cannot carry, become "?"."""
    encoded = message.encode("utf-8", "replace")
    if len(encoded) <= limit:
        return encoded.decode()
    cut = limit - len(ELLIPSIS.encode())
    return encoded[:cut].decode("utf-8", "ignore") + ELLIPSIS
