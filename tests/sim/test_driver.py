"""SimDriver lockstep protocol and StateRenderer (render from a published state) on the real MuJoCo task."""

import numpy as np
import pytest

pytest.importorskip("mujoco")

from rlt.execution import Chunking
from rlt.sim.config import SimConfig
from rlt.sim.driver import ChunkRejected, DriverConfig, SimDriver
from rlt.sim.env import AXIS_NAMES, PegInsertEnv
from rlt.sim.render import StateRenderer, apply_state, render_state
from rlt.types import ActionChunk, Event, Phase, Source, Terminal

pytestmark = pytest.mark.sim


def chunk(req, dz=0.0, source=Source.ACTOR):
    return ActionChunk(np.tile([0, 0, dz, 0], (10, 1)), AXIS_NAMES, source, stamp_ns=req.stamp_ns)


def test_state_renderer_matches_the_env():
    cfg = SimConfig(image_size=48)
    with PegInsertEnv(cfg) as env, PegInsertEnv(cfg.replace(cameras=())) as physics:
        renderer = StateRenderer(cfg)
        for seed in (1, 2):
            env.reset(seed)
            physics.reset(seed)
            for _ in range(3):
                obs = env.step(np.array([0.001, 0, -0.002, 0.01])).obs
                physics.step(np.array([0.001, 0, -0.002, 0.01]))
            images = renderer.render(*render_state(physics))
            for camera in cfg.cameras:
                # after mj_step MuJoCo's poses lag qpos by one 2 ms substep; the renderer draws qpos itself
                diff = np.abs(images[camera].astype(int) - obs.images[camera])
                assert diff.mean() < 1.0 and (diff > 30).mean() < 0.01, (camera, diff.mean())
        with pytest.raises(ValueError, match=r"SimState\.qpos"):
            renderer.render(np.zeros(3), *render_state(physics)[1:])
        renderer.close()


def test_a_mirror_gets_the_servo_lead_from_the_state_and_none_from_an_old_seven_value_one():
    cfg = SimConfig(cameras=())
    with PegInsertEnv(cfg) as physics, PegInsertEnv(cfg) as mirror:
        physics.reset(3, "critical")
        for _ in range(12):  # push down past the rim contact: the servo targets lead the joints
            physics.step(np.array([0.0, 0.0, -0.004, 0.0]))
        qpos, mocap, params = render_state(physics)
        apply_state(mirror, qpos, mocap, params)
        np.testing.assert_allclose(mirror.servo_lead(), physics.servo_lead())
        np.testing.assert_allclose(mirror.tip_offset(), physics.tip_offset(), atol=1e-6)  # one 2 ms substep
        assert physics.servo_lead()[2] < -0.001
        apply_state(mirror, qpos, mocap, params[:7])  # recorded before the targets were published
        np.testing.assert_array_equal(mirror.servo_lead(), 0.0)
        with pytest.raises(ValueError, match=r"SimState\.params: expected 7 or 13"):
            apply_state(mirror, qpos, mocap, params[:9])


def test_critical_mode_requests_every_stride_and_rejects_stale_chunks():
    driver = SimDriver(
        PegInsertEnv(SimConfig(cameras=(), critical_episode_seconds=1.0)),
        DriverConfig(mode="critical", episodes=1), Chunking(10, 2),
    )
    out = driver.begin_episode()
    assert [e.event for e in out.events] == [Event.START, Event.HANDOFF]
    req = out.request
    assert (req.step, req.need_chunk, req.phase) == (0, True, Phase.CRITICAL)
    stale = ActionChunk(np.zeros((10, 4)), AXIS_NAMES, stamp_ns=req.stamp_ns - 1)
    with pytest.raises(ChunkRejected, match="answers an older request"):
        driver.submit_chunk(stale)
    driver.submit_chunk(chunk(req, source=Source.HUMAN))
    seen = []
    while not driver.episode_over:
        out = driver.step()
        if out.request is not None:
            seen.append((out.request.step, out.request.need_chunk, out.request.terminal))
            if out.request.need_chunk:
                assert len(out.request.executed) == 2 and out.request.sources == (Source.HUMAN,) * 2
                driver.submit_chunk(chunk(out.request, source=Source.HUMAN))
    # 1 s at 20 Hz = 20 steps: observations every 2 steps, chunks at 10, the timeout report at 20
    expected = [(t, t == 10, Terminal.NONE) for t in range(2, 20, 2)] + [(20, False, Terminal.TIMEOUT)]
    assert seen == expected
    assert driver.finished
    with pytest.raises(RuntimeError, match="all 1 episodes are done"):
        driver.begin_episode()


def test_full_mode_hands_off_when_the_tip_reaches_the_critical_zone():
    env = PegInsertEnv(SimConfig(cameras=()))
    driver = SimDriver(env, DriverConfig(mode="full", handoff="auto"))
    out = driver.begin_episode()
    handoff = None
    while handoff is None and not driver.episode_over:
        if driver.waiting_for_chunk:
            # a privileged P-controller over the hole (0.8 of the error per chunk) as a stand-in base policy
            x, y, _z = env.tip_offset()
            driver.submit_chunk(
                chunk(out.request, dz=-0.003)
                if abs(x) + abs(y) < 0.004
                else ActionChunk(
                    np.tile(np.clip([-0.08 * x, -0.08 * y, 0, 0], -0.004, 0.004), (10, 1)),
                    AXIS_NAMES,
                    stamp_ns=out.request.stamp_ns,
                )
            )
        out = driver.step()
        if any(e.event == Event.HANDOFF for e in out.events):
            handoff = out
    assert handoff is not None and env.in_critical_phase()
    assert handoff.request.need_chunk and handoff.request.phase == Phase.CRITICAL  # the base chunk was dropped
    assert driver.waiting_for_chunk


def run_until_request(driver):
    while True:
        out = driver.step()
        if out.request is not None:
            return out


def test_operator_commands_take_effect_at_the_next_step():
    cfg = SimConfig(cameras=())
    driver = SimDriver(PegInsertEnv(cfg), DriverConfig(mode="full", handoff="manual"), Chunking(10, 2))
    req = driver.begin_episode().request
    assert "not an operator command" in driver.operator(Event.START)
    assert driver.operator(Event.HANDOFF) == ""  # the button: critical phase from the next step
    driver.submit_chunk(chunk(req))
    out = driver.step()
    assert [e.event for e in out.events] == [Event.HANDOFF] and out.request.need_chunk
    assert out.request.phase is Phase.CRITICAL and out.step == 1
    assert "already in the critical phase" in driver.operator(Event.HANDOFF)
    driver.submit_chunk(chunk(out.request))
    run_until_request(driver)
    assert driver.operator(Event.FAILURE) == ""
    out = driver.step()
    assert out.episode_over and out.request.terminal is Terminal.FAILURE
    assert [e.event for e in out.events] == [Event.FAILURE] and out.events[0].detail.startswith("operator")
    assert out.summary["success"] is False and "no episode is running" in driver.operator(Event.RESET)

    for command, terminal, event, reward in (
        (Event.SUCCESS, Terminal.SUCCESS, Event.SUCCESS, 1.0),
        (Event.RESET, Terminal.TIMEOUT, Event.RESET, 0.0),  # cut short, not a terminal state
    ):
        req = driver.begin_episode().request
        driver.submit_chunk(chunk(req))
        driver.operator(command)
        out = driver.step()
        assert out.episode_over and out.request.terminal is terminal and [e.event for e in out.events] == [event]
        assert out.request.rewards.tolist() == [reward] and out.summary["success"] is (command is Event.SUCCESS)
    never = SimDriver(PegInsertEnv(cfg), DriverConfig(handoff="never"))
    never.begin_episode()
    assert "handoff='never'" in never.operator(Event.HANDOFF)
