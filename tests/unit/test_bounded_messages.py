"""Echoed values are shortened and whole messages cut to a byte budget, on character
boundaries."""

from __future__ import annotations

from services.common.bounded import ECHO_CHARS, MESSAGE_BYTES, bound_message, shorten


def test_a_short_value_is_echoed_as_it_is() -> None:
    assert shorten("alcohol") == "alcohol"
    assert shorten("x" * ECHO_CHARS) == "x" * ECHO_CHARS


def test_a_long_value_keeps_its_start_and_says_how_long_it_was() -> None:
    assert shorten("é" * 20_000) == "é" * ECHO_CHARS + "… (20000 characters)"


def test_a_message_is_cut_to_its_byte_budget_on_a_character_boundary() -> None:
    assert bound_message("fine") == "fine"
    for text in ("n" * 5000, "é" * 5000, "🍷" * 5000):
        bounded = bound_message(f"field: {text}")
        assert len(bounded.encode()) <= MESSAGE_BYTES
        assert bounded.startswith("field: ") and bounded.endswith("…")
        assert "\ufffd" not in bounded


def test_a_lone_surrogate_cannot_break_the_message() -> None:
    assert bound_message("bad \udc80 name") == "bad ? name"
