"""PegInsertEnv: resets, determinism, action checks and clamps, episode ends, privileged state, rendering."""

import math

import numpy as np
import pytest

pytestmark = pytest.mark.sim
mujoco = pytest.importorskip("mujoco")

from rlt.sim.config import SimConfig  # noqa: E402
from rlt.sim.env import (  # noqa: E402
    ACTION_DIM,
    AXIS_NAMES,
    PROPRIO_DIM,
    PROPRIO_NAMES,
    SUCCESS_DEPTH,
    PegInsertEnv,
)
from rlt.sim.scene import JOINT_NAMES, RIM_HEIGHT  # noqa: E402

DOWN = np.array([0.0, 0.0, -0.004, 0.0])


@pytest.fixture(scope="module")
def env():
    with PegInsertEnv(SimConfig(cameras=())) as env:
        yield env


def test_names_and_sizes():
    assert AXIS_NAMES == ("dx", "dy", "dz", "dyaw") and ACTION_DIM == 4 == PegInsertEnv.action_dim
    assert PROPRIO_NAMES[:6] == JOINT_NAMES == ("x", "y", "z", "yaw", "pitch", "roll")
    assert PROPRIO_NAMES[6:] == tuple(f"{n}_vel" for n in JOINT_NAMES) and PROPRIO_DIM == 12


def test_full_reset_starts_high_above_a_random_socket(env):
    obs = env.reset(seed=0)
    assert obs.step == 0 and obs.images == {}
    assert obs.proprio.dtype == np.float32 and obs.proprio.shape == (12,)
    assert np.all(obs.proprio[6:] == 0)
    tip = env.tip_offset()
    assert tip[2] == pytest.approx(env.cfg.start_height, abs=1e-6)
    assert not env.in_critical_phase() and not env.success()
    assert env.max_steps == 160
    assert np.all(np.abs(env.data.site("hole").xpos[:2]) <= env.cfg.socket_xy_range + 1e-9)


def test_critical_reset_starts_in_the_critical_phase(env):
    cfg = env.cfg
    for seed in range(20):
        env.reset(seed=seed, mode="critical")
        x, y, z = env.tip_offset()
        assert cfg.critical_height_min - 1e-6 <= z <= cfg.critical_height_max + 1e-6
        assert max(abs(x), abs(y)) <= cfg.critical_xy_range + 1e-6
        assert abs(env.yaw_error()) <= cfg.critical_yaw_range + 1e-6
        assert env.in_critical_phase()
    assert env.max_steps == 100


def test_reset_is_deterministic_for_a_seed(env):
    def trajectory(seed):
        obs = [env.reset(seed=seed).proprio]
        obs += [env.step(np.array([0.002, -0.001, -0.003, 0.02])).obs.proprio for _ in range(10)]
        return np.stack(obs), env.tip_offset()

    first, again, other = trajectory(5), trajectory(5), trajectory(6)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0][0], other[0][0])


@pytest.mark.parametrize(
    "action,match",
    [
        (np.zeros(3), r"action must have shape \(4,\) = \('dx', 'dy', 'dz', 'dyaw'\), got shape \(3,\)"),
        (np.zeros((1, 4)), r"got shape \(1, 4\)"),
        (np.array([0.0, np.nan, 0.0, 0.0]), r"action must be finite, got \[0\.0, nan, 0\.0, 0\.0\]"),
        (np.array([0.0, 0.0, np.inf, 0.0]), r"action must be finite"),
    ],
)
def test_bad_actions_are_rejected(env, action, match):
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(action)


def test_unknown_mode_and_step_before_reset_are_rejected():
    with PegInsertEnv(SimConfig(cameras=())) as env:
        with pytest.raises(RuntimeError, match=r"call reset\(\)"):
            env.step(np.zeros(4))
        with pytest.raises(RuntimeError, match=r"call reset\(\) first"):
            env.extend(5)
        with pytest.raises(ValueError, match=r"unknown episode mode 'fast'; expected one of full, critical"):
            env.reset(seed=0, mode="fast")


def test_actions_are_clamped_per_step_and_targets_stay_near_the_joints(env):
    env.reset(seed=1)
    start = env.data.ctrl.copy()
    env.step(np.array([1.0, -1.0, 0.5, 3.0]))  # far beyond the per-step bounds
    np.testing.assert_allclose(env.data.ctrl[:4] - start[:4], [0.004, -0.004, 0.004, 0.05], atol=1e-12)
    for _ in range(30):
        env.step(np.array([0.0, 0.0, -0.004, 0.0]))
        lead = env.servo_lead()
        assert np.all(np.abs(lead[:3]) <= 0.01 + 1e-12) and np.all(np.abs(lead[3:]) <= 0.1 + 1e-12)
    np.testing.assert_allclose(env.data.ctrl[4:], 0.0)  # pitch and roll targets held level


def test_time_limit_truncates_without_success(env):
    env.reset(seed=2, mode="critical")
    for t in range(1, 101):
        result = env.step(np.zeros(4))
        assert result.info["duration"] == t and result.obs.step == t
        if result.truncated:
            break
    assert t == 100 and result.truncated and not result.terminated and result.reward == 0.0
    assert result.info == {"success": False, "duration": 100, "max_steps": 100, "mode": "critical"}
    with pytest.raises(RuntimeError, match="episode is over"):
        env.step(np.zeros(4))
    env.extend(3)  # an operator takes over: three more steps, then truncated again
    for _ in range(3):
        result = env.step(np.zeros(4))
    assert result.truncated and result.info == {"success": False, "duration": 103, "max_steps": 103,
                                                "mode": "critical"}
    with pytest.raises(ValueError, match="steps=0: must be >= 1"):
        env.extend(0)


def test_driving_straight_in_succeeds_and_terminates(env):
    """With the hole axis and yaw known, pushing straight down inserts the peg."""
    env.reset(seed=4, mode="critical")
    for _ in range(40):  # align over the hole first
        x, y, _ = env.tip_offset()
        yaw = env.hole_yaw()
        dx, dy = math.cos(yaw) * -x - math.sin(yaw) * -y, math.sin(yaw) * -x + math.cos(yaw) * -y
        env.step(np.array([0.5 * dx, 0.5 * dy, 0.0, -0.5 * env.yaw_error()]))
    for _ in range(60):
        result = env.step(np.array([0.0, 0.0, -0.001, 0.0]))
        if result.terminated:
            break
    assert result.terminated and result.reward == 1.0 and result.info["success"] and not result.truncated
    assert env.tip_offset()[2] < -SUCCESS_DEPTH and env.in_critical_phase()
    assert env.max_penetration() < 5e-5
    with pytest.raises(RuntimeError, match="has not succeeded"):
        env.extend(5)


def test_yaw_error_is_taken_modulo_half_a_turn(env):
    env.reset(seed=0, mode="critical")
    before = env.yaw_error()
    env.data.qpos[3] += math.pi
    mujoco.mj_forward(env.model, env.data)
    assert env.yaw_error() == pytest.approx(before, abs=1e-9)
    assert -math.pi / 2 <= before < math.pi / 2


def test_success_needs_depth_and_the_tip_inside_the_hole(env):
    env.reset(seed=0, mode="critical")
    hole = env.data.site("hole")
    env.data.qpos[:3] += hole.xpos - env.data.site("peg_tip").xpos + [0.0, 0.0, -0.016]
    mujoco.mj_forward(env.model, env.data)
    assert env.success()
    env.data.qpos[:2] += 0.01  # beside the hole at the same depth: not a success
    mujoco.mj_forward(env.model, env.data)
    assert not env.success() and env.tip_offset()[2] < -SUCCESS_DEPTH
    assert hole.xpos[2] == pytest.approx(RIM_HEIGHT)


def test_cameras_render_rgb_images_and_close_releases_them():
    cfg = SimConfig(cameras=("wrist", "front"), image_size=32)
    with PegInsertEnv(cfg) as env:
        obs = env.reset(seed=0)
        assert list(obs.images) == ["wrist", "front"]
        for image in obs.images.values():
            assert image.dtype == np.uint8 and image.shape == (32, 32, 3) and image.std() > 0
        step_images = env.step(DOWN).obs.images
        assert not np.shares_memory(step_images["wrist"], obs.images["wrist"])
        assert not np.array_equal(step_images["wrist"], obs.images["wrist"])  # the hand moved
        again = env.reset(seed=0).images
        np.testing.assert_array_equal(again["front"], obs.images["front"])
    env.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        env.reset(seed=0)


def test_cameras_see_no_sites():
    """A camera image must not change when every site group is hidden: the hole-centre and peg-tip sites are
    privileged markers a real camera cannot see. Default MuJoCo options draw them, which this test would catch."""
    with PegInsertEnv(SimConfig()) as env:
        hidden = mujoco.MjvOption()
        hidden.sitegroup[:] = 0
        shown = mujoco.MjvOption()  # MuJoCo's defaults: site groups 0-2 drawn
        renderer = mujoco.Renderer(env.model, env.cfg.image_size, env.cfg.image_size)
        leaks = 0
        for seed in range(4):
            images = env.reset(seed, "critical").images
            for camera, image in images.items():
                renderer.update_scene(env.data, camera=camera, scene_option=hidden)
                np.testing.assert_array_equal(image, renderer.render(), err_msg=f"{camera}, seed {seed}")
                renderer.update_scene(env.data, camera=camera, scene_option=shown)
                leaks += int(np.any(renderer.render() != image))
        renderer.close()
    assert leaks, "the default options drew no site in any image: this test no longer checks anything"
