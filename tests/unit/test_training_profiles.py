"""A job's profiles: the CLI's --profile picks one of them, and --seed replaces its seed."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from training.jobs import RunOptions, profile_config


@dataclass(frozen=True)
class TinyConfig:
    profile: str
    epochs: int
    seed: int = 3


QUICK = TinyConfig("quick", epochs=1)
FULL = TinyConfig("full", epochs=9)


def test_the_options_profile_is_picked_with_its_own_seed() -> None:
    assert profile_config((QUICK, FULL), RunOptions(profile="full")) is FULL
    assert profile_config((QUICK, FULL), RunOptions(profile="quick")) is QUICK


def test_a_seed_in_the_options_replaces_the_profiles() -> None:
    config = profile_config((QUICK, FULL), RunOptions(profile="full", seed=11))
    assert config == TinyConfig("full", epochs=9, seed=11)


def test_a_profile_the_job_lacks_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="no profile 'huge'; the job has quick, full"):
        profile_config((QUICK, FULL), RunOptions(profile="huge"))
