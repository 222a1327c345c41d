"""The local suite's restart pauses: 1 s, doubling to 30 s while a child keeps dying, and 1 s
again once it has run stably."""

from __future__ import annotations

from services.suite.supervisor import Backoff


def test_pauses_double_up_to_the_longest_while_the_child_keeps_dying() -> None:
    backoff = Backoff(first_s=1, longest_s=30, stable_s=60)
    pauses: list[float] = []
    previous = None
    for _ in range(8):
        previous = backoff.pause_s(previous, ran_s=2)
        pauses.append(previous)
    assert pauses == [1, 2, 4, 8, 16, 30, 30, 30]


def test_a_stable_run_starts_the_pauses_again_from_the_first() -> None:
    backoff = Backoff(first_s=1, longest_s=30, stable_s=60)
    assert backoff.pause_s(30, ran_s=59) == 30
    assert backoff.pause_s(30, ran_s=60) == 1
