"""The seed ranges are disjoint, defined once, and the commands evaluate where they say they do."""

import itertools

import pytest

from rlt.seeds import DEMOS, EVALUATION, RANGES, TRAINING, TUNING


def test_the_ranges_never_overlap():
    for a, b in itertools.combinations(RANGES.values(), 2):
        assert a.first + a.size <= b.first or b.first + b.size <= a.first, (a.name, b.name)


def test_every_default_draws_from_its_range():
    from rlt.app.evaluate import DEFAULT_SEED0
    from rlt.app.inprocess import InProcessConfig
    from rlt.app.session import SessionConfig
    from rlt.sim.config import RolloutConfig

    assert InProcessConfig().seeds == "tuning" and DEFAULT_SEED0 in TUNING  # sweeps and diagnostics tune
    cfg = SessionConfig()
    EVALUATION.check(EVALUATION.first, cfg.eval_episodes)
    TRAINING.check(TRAINING.first, cfg.train_max_episodes)
    pytest.importorskip("mujoco")
    from rlt.app.recipe import APPROACH, RECIPE
    from rlt.sim.demos import demo_seed

    for expert_seed, count in [(p.expert_seed, p.episodes * 10) for p in (*RECIPE, APPROACH)] + [
            (RolloutConfig().seed, RolloutConfig().episodes)]:
        assert demo_seed(expert_seed, 0) in DEMOS and demo_seed(expert_seed, count) in DEMOS


def test_a_seed_past_the_end_of_its_range_is_refused():
    assert EVALUATION.seed(0) == EVALUATION.first and EVALUATION.seed(1) not in TUNING
    with pytest.raises(ValueError, match="evaluation range"):
        EVALUATION.seed(EVALUATION.size)
    with pytest.raises(ValueError, match="not all in the training range"):
        TRAINING.check(TRAINING.first, TRAINING.size + 1)
    from rlt.app.session import SessionConfig
    from rlt.config import ConfigError

    with pytest.raises(ConfigError, match="evaluation range"):
        SessionConfig(eval_episodes=EVALUATION.size + 1)
