"""How ``make test``'s pytest-xdist workers share the tests out: a file's tests go to one worker,
so that its module fixtures start once; every test of tests/training goes to one worker, the one
that trains the session's models (tests/session_training.py); and the tests of a few files whose
tests share nothing wider than a parameter go out one by one, or by parameter where several
tests take it (their module fixture, parametrized, then starts once per worker). xdist's own
``loadgroup`` would say the same with marks, but it renames test ids in a way pytest 9 no longer
allows."""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

TRAINING_TESTS = "tests/training/"
# Each of their tests, or of their parameters, runs for a minute or so with processes of its own.
SPREAD_FILES = frozenset({"tests/reliability/test_rollouts.py"})


def scope_of(nodeid: str) -> str:
    """The unit of work a test is sent to a worker in."""
    path = nodeid.split("::", 1)[0]
    if path.startswith(TRAINING_TESTS):
        return TRAINING_TESTS
    if path in SPREAD_FILES:
        test, _, parameter = nodeid.partition("[")
        return f"{path}[{parameter}" if parameter else test
    return path


class SuiteScheduling(LoadScopeScheduling):
    def _split_scope(self, nodeid: str) -> str:
        return scope_of(nodeid)
