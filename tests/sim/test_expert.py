"""ScriptedTeleop: labels vs executed actions (DART), determinism, the episode runners."""

import math

import numpy as np
import pytest

pytestmark = pytest.mark.sim
pytest.importorskip("mujoco")

from rlt.sim.config import ExpertConfig, SimConfig  # noqa: E402
from rlt.sim.env import PegInsertEnv  # noqa: E402
from rlt.sim.expert import (  # noqa: E402
    ScriptedTeleop,
    evaluate_expert,
    policy_rollout,
    rollout,
    run_episode,
)

CLEAN = ExpertConfig().without_errors()


@pytest.fixture(scope="module")
def env():
    with PegInsertEnv(SimConfig(cameras=())) as env:
        yield env


def test_clean_expert_inserts_quickly_in_both_modes(env):
    success, steps = run_episode(env, ScriptedTeleop(env, CLEAN), seed=0)
    assert success and steps <= 50  # the "scripted teleop" reference RL must beat: about 2 s
    success, steps = run_episode(env, ScriptedTeleop(env, CLEAN), seed=0, mode="critical")
    assert success and steps <= 35


def test_labels_equal_executed_actions_without_dart(env):
    steps = list(rollout(env, ScriptedTeleop(env, ExpertConfig()), seed=1))
    for step in steps:
        np.testing.assert_array_equal(step.executed, step.label)
        assert np.all(np.abs(step.label) <= env.cfg.action_bounds)
    assert [s.obs.step for s in steps] == list(range(len(steps)))
    assert steps[-1].result.terminated or steps[-1].result.truncated


def test_dart_noise_perturbs_execution_but_not_labels(env):
    cfg = CLEAN.replace(dart_xyz_sigma=0.0005, dart_yaw_sigma=0.005)
    steps = list(rollout(env, ScriptedTeleop(env, cfg, np.random.default_rng(0)), seed=2))
    gaps = np.array([s.executed - s.label for s in steps])  # float64[T, 4]
    assert np.all(np.abs(gaps).max(axis=0) > 0)
    assert 0.0002 < gaps[:, :3].std() < 0.001
    # Labels are the clean controller's output for the perturbed state: they steer back, so the episode succeeds.
    assert steps[-1].result.info["success"]


def test_teleop_is_deterministic_for_a_generator_seed(env):
    def labels(seed):
        teleop = ScriptedTeleop(env, ExpertConfig(bias_xy_sigma=0.001), np.random.default_rng(seed))
        return np.array([s.label for s in rollout(env, teleop, seed=3)])

    np.testing.assert_array_equal(labels(7), labels(7))
    assert not np.array_equal(labels(7), labels(8))


def test_perception_bias_is_drawn_per_episode(env):
    teleop = ScriptedTeleop(env, ExpertConfig(bias_xy_sigma=0.001, bias_yaw_sigma=0.02), np.random.default_rng(0))
    env.reset(seed=0)
    teleop.reset()
    first_xy, first_yaw = teleop.perception_bias
    teleop.reset()
    second_xy, second_yaw = teleop.perception_bias
    assert not np.array_equal(first_xy, second_xy) and first_yaw != second_yaw
    assert np.all(first_xy != 0)


def test_evaluate_expert_reports_rates_and_durations(env):
    stats = evaluate_expert(env, CLEAN, episodes=3, mode="critical")
    assert stats.episodes == 3 and stats.success_rate == 1.0
    assert 10 < stats.mean_duration < 40 and 0 <= stats.max_penetration < 5e-5
    hopeless = evaluate_expert(env, ExpertConfig(bias_xy_sigma=0.012), episodes=2, mode="critical")
    assert hopeless.success_rate == 0.0 and math.isnan(hopeless.mean_duration)
    with pytest.raises(ValueError, match="episodes=0: must be >= 1"):
        evaluate_expert(env, CLEAN, episodes=0)


def test_policy_rollout_executes_chunks_open_loop_and_rejects_short_ones(env):
    queries = []

    def descend(images, proprio):  # 5 rows straight down, 2 mm each
        queries.append(proprio.copy())
        return np.tile(np.array([0.0, 0.0, -0.002, 0.0], dtype=np.float32), (5, 1))

    steps = list(policy_rollout(env, descend, seed=3, mode="critical", execute_steps=5))
    assert len(queries) == -(-len(steps) // 5)  # one query per 5 executed steps
    assert all(np.array_equal(s.executed, s.label) for s in steps)  # no noise given: executed as commanded
    with pytest.raises(ValueError, match="execute_steps=10 exceeds the policy's chunk of 5"):
        next(policy_rollout(env, descend, seed=3, mode="critical", execute_steps=10))


def test_rollout_on_a_perception_acts_on_the_estimate_not_the_privileged_pose(env):
    """The expert on an estimate of x, y, yaw: the truth reproduces the privileged expert; a 3 mm error stalls it."""
    calls = []

    def truth(obs):  # the tip's offset from the hole axis in the world frame, and the yaw error
        calls.append(obs.step)
        c, s = math.cos(env.hole_yaw()), math.sin(env.hole_yaw())
        x, y = env.tip_offset()[:2]
        return np.array([c * x - s * y, s * x + c * y, env.yaw_error()])

    def biased(obs):
        return truth(obs) + np.array([0.003, 0.0, 0.0])

    privileged = list(rollout(env, ScriptedTeleop(env, CLEAN), seed=3, mode="critical"))
    steps = list(rollout(env, ScriptedTeleop(env, CLEAN), 3, "critical", perceive=truth, every=1))
    assert steps[-1].result.terminated and len(steps) == len(privileged)
    np.testing.assert_allclose([s.executed for s in steps], [s.executed for s in privileged], atol=1e-9)
    calls.clear()
    steps = list(rollout(env, ScriptedTeleop(env, CLEAN), 3, "critical", perceive=truth, every=10))
    assert steps[-1].result.terminated  # dead reckoning between the estimates keeps it on target
    assert calls == list(range(0, len(steps), 10))  # queried as a chunking policy would be
    steps = list(rollout(env, ScriptedTeleop(env, CLEAN), 3, "critical", perceive=biased, every=10))
    assert steps[-1].result.truncated  # aims 3 mm off, beyond the chamfer: stalls on the rim


def test_perception_noise_is_drawn_every_step_and_zero_is_the_true_pose(env):
    """A person's perception: with per-step noise the same state gives different actions; without any error the
    action is a function of the state (privileged); the default operator perceives with error."""
    def actions(cfg, rng_seed):
        env.reset(seed=3, mode="critical")
        teleop = ScriptedTeleop(env, cfg, np.random.default_rng(rng_seed))
        teleop.reset()
        return np.array([teleop.act()[1] for _ in range(3)])  # float64[3, 4], the state does not change

    noisy = ExpertConfig(bias_xy_sigma=0.0, bias_yaw_sigma=0.0, action_noise_xyz_sigma=0.0, action_noise_yaw_sigma=0.0)
    assert noisy.perception_noise_xy_sigma > 0 and ExpertConfig().bias_xy_sigma >= 0.0005  # the defaults are a person's
    seen = actions(noisy, 0)
    assert not np.allclose(seen[0], seen[1])  # a new perception error every step
    clean = actions(CLEAN, 0)
    np.testing.assert_array_equal(clean[0], clean[1])
    np.testing.assert_array_equal(clean, actions(CLEAN, 1))  # no error draws reach the action
