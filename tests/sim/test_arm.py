"""SimArm (the simulated ros2_control arm) and SimJudge (the scripted operator) on the real MuJoCo task."""

import numpy as np
import pytest

pytest.importorskip("mujoco")

from rlt.robot.executor import SIM_JOINTS, Command
from rlt.seeds import TRAINING
from rlt.sim.arm import ArmConfig, JudgeConfig, SimArm, SimJudge
from rlt.sim.config import SimConfig
from rlt.sim.env import PegInsertEnv
from rlt.sim.scene import JOINT_NAMES
from rlt.types import EpisodeEvent, Event

pytestmark = pytest.mark.sim
MS = 1_000_000  # ns
# episodes that start right above the hole, aligned: a straight descent inserts the peg
ALIGNED = SimConfig(cameras=(), preset="easy", critical_xy_range=0.0, critical_yaw_range=0.0)


def command(*points, dt_s=0.05):
    positions = np.array(points, np.float64)
    return Command(positions, np.zeros_like(positions), dt_s * np.arange(1, len(points) + 1))


def test_the_executor_drives_the_scenes_joints():
    assert SIM_JOINTS == JOINT_NAMES


def test_drive_sets_absolute_servo_targets_within_the_lead():
    with PegInsertEnv(SimConfig(cameras=())) as env:
        with pytest.raises(RuntimeError, match="reset"):
            env.drive(np.zeros(6), 5)
        env.reset(1, "critical")
        q0 = env.data.qpos[:6].copy()
        target = q0 + np.array([0.003, 0.0, 0.0, 0.02, 0.0, 0.0])
        for _ in range(100):  # 1 s
            env.drive(target, 5)
        np.testing.assert_allclose(env.data.qpos[:6], target, atol=5e-4)
        x = env.data.qpos[0]
        env.drive(q0 + np.array([0.5, 0, 0, 0, 0, 0]), 1)  # far away: the target is kept 1 cm ahead of the joint
        assert env.data.ctrl[0] == pytest.approx(x + 0.01)
        with pytest.raises(ValueError, match="finite"):
            env.drive(np.full(6, np.nan), 5)
        with pytest.raises(ValueError, match="substeps"):
            env.drive(target, 0)


def test_the_trajectory_is_sampled_as_the_controller_does():
    with PegInsertEnv(SimConfig(cameras=())) as env:
        arm = SimArm(env, ArmConfig())
        q0 = arm.reference(0)
        np.testing.assert_array_equal(q0, env.data.qpos[:6])  # holds the reset pose
        p1, p2 = q0 + 0.002, q0 + 0.006
        reversed_names = tuple(reversed(JOINT_NAMES))
        arm.on_trajectory(reversed_names, command(p1[::-1], p2[::-1]), now_ns=1000 * MS)  # any joint order
        np.testing.assert_allclose(arm.reference(1000 * MS), q0)  # from the reference at receipt
        np.testing.assert_allclose(arm.reference(1025 * MS), (q0 + p1) / 2)  # linear in time
        np.testing.assert_allclose(arm.reference(1050 * MS), p1)
        np.testing.assert_allclose(arm.reference(1075 * MS), (p1 + p2) / 2)
        np.testing.assert_allclose(arm.reference(1500 * MS), p2)  # the last point is held
        # a new trajectory starts where the reference is when it arrives
        arm.on_trajectory(JOINT_NAMES, command(q0), now_ns=1075 * MS)
        np.testing.assert_allclose(arm.reference(1100 * MS), ((p1 + p2) / 2 + q0) / 2)
        for names, bad, match in [
            (JOINT_NAMES[:5], command(p1[:5]), "joint_names"),
            (JOINT_NAMES, command(np.full(6, np.nan)), "non-finite"),
            (JOINT_NAMES, Command(np.stack([p1, p2]), np.zeros((2, 6)), np.array([0.1, 0.1])), "increase"),
        ]:
            with pytest.raises(ValueError, match=match):
                arm.on_trajectory(names, bad, now_ns=1200 * MS)
        np.testing.assert_allclose(arm.reference(1200 * MS), q0)  # a rejected trajectory changes nothing
        arm.on_trajectory(JOINT_NAMES, Command(np.zeros((0, 6)), np.zeros((0, 6)), np.zeros(0)), now_ns=1200 * MS)
        np.testing.assert_allclose(arm.reference(2000 * MS), q0)  # no points: hold


def test_the_physics_keeps_pace_with_the_wall_clock_and_tracks_the_reference():
    with PegInsertEnv(SimConfig(cameras=())) as env:
        arm = SimArm(env, ArmConfig(control_hz=100.0, max_lag_s=0.2))
        assert arm.substeps == 5 and arm.advance(10_000 * MS) == 0  # the first call sets the clock
        assert arm.advance(10_100 * MS) == 10 and arm.advance(10_105 * MS) == 0 and arm.stepped_ns == 100 * MS
        q0, _ = arm.joint_state()
        target = q0 + np.array([0.004, -0.002, 0.003, 0.03, 0.0, 0.0])
        arm.on_trajectory(JOINT_NAMES, command(target), now_ns=10_100 * MS)
        for t in range(10_110, 10_610, 10):  # a caller every 10 ms
            arm.advance(t * MS)
        q, qd = arm.joint_state()
        np.testing.assert_allclose(q, target, atol=5e-4)
        assert np.abs(qd).max() < 0.05
        arm.advance(12_000 * MS)  # a caller 1.4 s late: skips ahead rather than running 1.4 s of physics at once
        assert arm.skipped_ns == 1390 * MS and arm.sim_ns == 12_000 * MS
        with pytest.raises(ValueError, match="integer"):
            SimArm(env, ArmConfig(control_hz=30.0))


def test_an_episode_end_resets_the_next_scene_after_the_delay():
    with PegInsertEnv(SimConfig(cameras=())) as env, PegInsertEnv(SimConfig(cameras=())) as ref:
        arm = SimArm(env, ArmConfig(seed=100, reset_delay_s=0.5))
        ref.reset(100, "critical")
        np.testing.assert_array_equal(env.data.qpos, ref.data.qpos)  # episode 0's scene, before any START
        arm.advance(0)
        arm.on_event(EpisodeEvent(Event.START, 0), 100 * MS)
        arm.on_trajectory(JOINT_NAMES, command(arm.reference(100 * MS) + 0.003), now_ns=100 * MS)
        arm.advance(300 * MS)
        arm.on_event(EpisodeEvent(Event.SUCCESS, 0), 300 * MS)
        assert not arm.ready
        arm.advance(700 * MS)
        assert arm.scene_episode == 0
        arm.advance(800 * MS)
        ref.reset(101, "critical")
        assert arm.ready and arm.scene_episode == 1 and arm.reset_ns == 800 * MS
        np.testing.assert_allclose(env.data.qpos, ref.data.qpos, atol=2e-4)  # then 10 ms of physics
        np.testing.assert_array_equal(arm.reference(900 * MS), ref.data.qpos[:6])  # the old trajectory is dropped
        arm.on_event(EpisodeEvent(Event.RESET, 0), 900 * MS)  # a late duplicate of a handled end: nothing
        assert arm.ready


def test_the_judge_starts_hands_off_and_calls_the_time_limit():
    with PegInsertEnv(SimConfig(cameras=())) as env:
        arm = SimArm(env, ArmConfig())
        judge = SimJudge(arm, JudgeConfig(time_limit_s=1.0, start_delay_s=0.5, retry_s=2.0))
        assert judge.judge(100 * MS) == []  # the scene was just reset (at 0)
        assert judge.judge(600 * MS, executor_ready=False) == []
        assert [e for e, _ in judge.judge(600 * MS)] == [Event.START]
        assert judge.judge(700 * MS) == []  # pressed: waits for the executor's answer
        assert [e for e, _ in judge.judge(2700 * MS)] == [Event.START]  # no answer: presses again
        judge.on_event(EpisodeEvent(Event.START, 0), 2800 * MS)
        assert [e for e, _ in judge.judge(2800 * MS)] == [Event.HANDOFF]  # a critical scene: at the hole
        judge.on_event(EpisodeEvent(Event.HANDOFF, 0), 2850 * MS)
        assert judge.judge(3000 * MS) == []
        (event, detail), = judge.judge(3900 * MS)
        assert event is Event.RESET and "no success in 1 s" in detail
        judge.on_event(EpisodeEvent(Event.RESET, 0, detail=detail), 3950 * MS)
        arm.on_event(EpisodeEvent(Event.RESET, 0, detail=detail), 3950 * MS)
        assert judge.judge(4000 * MS) == []  # the scene is being put back
        arm.advance(4500 * MS)
        assert judge.judge(4600 * MS) == []  # reset at 4.5 s, START half a second later
        (event, detail), = judge.judge(5000 * MS)
        assert event is Event.START and f"seed {TRAINING.first + 1}" in detail
        assert judge.outcomes == {"RESET": 1}
        assert SimJudge(arm, JudgeConfig(enabled=False)).judge(10_000 * MS) == []


def test_the_judge_stops_after_its_episodes_or_its_wall_clock_budget():
    with PegInsertEnv(SimConfig(cameras=())) as env:
        arm = SimArm(env, ArmConfig())
        for cfg, end_ms, done_at_end in ((JudgeConfig(episodes=1), 2000, True),
                                        (JudgeConfig(budget_s=5.0), 2000, False),
                                        (JudgeConfig(budget_s=5.0), 6000, True)):
            judge = SimJudge(arm, cfg)
            judge.on_event(EpisodeEvent(Event.START, 0), 1000 * MS)
            assert not judge.done(9000 * MS)  # an episode runs: it is never cut short
            judge.on_event(EpisodeEvent(Event.SUCCESS, 0), end_ms * MS)
            assert judge.done(end_ms * MS) is done_at_end, cfg
            assert (judge.judge(end_ms * MS + 10**9) == []) is done_at_end  # a done judge presses no START
        with pytest.raises(ValueError, match="budget_s"):
            JudgeConfig(budget_s=-1.0)


def test_the_judge_sees_the_peg_go_in():
    with PegInsertEnv(ALIGNED) as env:
        arm = SimArm(env, ArmConfig(seed=3))
        judge = SimJudge(arm, JudgeConfig(time_limit_s=10.0))
        arm.advance(0)
        judge.on_event(EpisodeEvent(Event.START, 0), 0)
        judge.on_event(EpisodeEvent(Event.HANDOFF, 0), 0)
        q = arm.reference(0)
        down = q - [0, 0, 0.03, 0, 0, 0]
        arm.on_trajectory(JOINT_NAMES, command(down, dt_s=1.5), now_ns=0)
        pressed = []
        for t in range(10, 2500, 10):
            arm.advance(t * MS)
            pressed += judge.judge(t * MS)
            if pressed:
                break
        assert [e for e, _ in pressed] == [Event.SUCCESS] and env.success()


def test_the_arm_renders_its_cameras():
    with PegInsertEnv(SimConfig(image_size=16)) as env:
        arm = SimArm(env, ArmConfig())
        images = arm.render()
        assert set(images) == {"front", "wrist"} and all(i.shape == (16, 16, 3) for i in images.values())
        intrinsics = arm.intrinsics()
        assert intrinsics["front"].fy == pytest.approx(8 / np.tan(np.radians(40) / 2))  # the scene's 40 deg
        assert intrinsics["wrist"].fy == pytest.approx(8 / np.tan(np.radians(50) / 2))  # SimConfig.wrist_fovy
        assert (intrinsics["front"].width, intrinsics["front"].ppx) == (16, 7.5)
