"""ChunkExecutor with literal clocks: episodes, requests, chunk acceptance, the watchdog and adversarial streams."""

import contextlib

import numpy as np
import pytest

from rlt.config import ConfigError
from rlt.execution import Chunking
from rlt.rl.actor_core import ActorConfig, ActorCore
from rlt.rl.config import RLConfig
from rlt.robot.executor import STAGES, ChunkExecutor, ChunkRejected, ExecutorConfig, stage_latencies
from rlt.robot.safety import SafetyConfig
from rlt.types import ActionChunk, ChunkRequest, Event, Phase, Source, Terminal, VlaOutput

AXES = ("dx", "dy", "dz", "dyaw")
MS = 1_000_000
PERIOD = 50 * MS  # 20 Hz
SAFETY = SafetyConfig(
    workspace_min=(-0.1, -0.1, 0.0, -1.0),
    workspace_max=(0.1, 0.1, 0.2, 1.0),
    max_joint_velocity=(0.1, 0.1, 0.1, 1.0, 1.0, 1.0),
)
Q0 = np.array([0.0, 0.0, 0.1, 0.0, 0.0, 0.0])


class Rig:
    """An executor plus a perfectly tracking arm and a clock; records every command."""

    def __init__(self, **cfg: object) -> None:
        self.ex = ChunkExecutor(ExecutorConfig(**cfg), SAFETY, chunking=Chunking(4, 2))
        self.now = 10**12
        self.commands = []
        self.requests: list[ChunkRequest] = []
        self.events = []
        self.holds: list[str] = []
        self.q = Q0.copy()
        self.ex.on_joint_state(self.q, self.now)

    def absorb(self, out):
        if out.command is not None:
            self.commands.append(out.command)
            self.q = out.command.positions[0].copy()  # the arm reaches the first point by the next tick
        self.requests += out.requests
        self.events += [e.event for e in out.events]
        if out.hold_reason:
            self.holds.append(out.hold_reason)
        return out

    def tick(self, n: int = 1):
        out = None
        for _ in range(n):
            self.now += PERIOD
            self.ex.on_joint_state(self.q, self.now)
            out = self.absorb(self.ex.tick(self.now))
        return out

    def operator(self, event: Event):
        return self.absorb(self.ex.on_operator(event, self.now))

    def answer(self, rows, request: ChunkRequest | None = None, axes=AXES, delay_ms: int = 20, source=Source.ACTOR):
        request = request or self.requests[-1]
        chunk = ActionChunk(np.asarray(rows, np.float32), axes, source, len(self.requests), request.stamp_ns,
                            vla_ns=request.stamp_ns + delay_ms * MS // 2, sent_ns=request.stamp_ns + delay_ms * MS - MS)
        self.ex.submit_chunk(chunk, request.stamp_ns + delay_ms * MS)  # the VLA took half the delay, delivery 1 ms


def test_nothing_moves_before_an_episode_starts():
    rig = Rig()
    rig.tick(3)
    assert rig.holds == ["no episode running"] and len(rig.commands) == 1
    assert np.array_equal(rig.commands[0].positions, Q0[None]) and not rig.commands[0].velocities.any()
    with pytest.raises(ChunkRejected, match="no episode is running"):
        rig.ex.submit_chunk(ActionChunk(np.zeros((4, 4)), AXES, stamp_ns=rig.now), rig.now)


def test_auto_start_begins_episode_zero():
    rig = Rig(auto_start=True)
    rig.tick()
    assert rig.events == [Event.START] and rig.requests[0].need_chunk and rig.ex.running


def test_chunks_run_row_by_row_then_the_boundary_reports_them():
    rig = Rig()
    rig.operator(Event.START)
    first = rig.requests[0]
    assert (first.episode_id, first.step, first.need_chunk, len(first.sources)) == (0, 0, True, 0)
    rig.answer([[0.002, 0.0, 0.0, 0.0]] * 4)
    for k in range(4):
        out = rig.tick()
        assert out.command.positions[0][0] == pytest.approx(0.002 * (k + 1))
    boundary = rig.requests[-1]
    assert boundary.need_chunk and boundary.step == 4 and boundary.sources == (Source.ACTOR,) * 4
    assert np.allclose(boundary.executed, [[0.002, 0, 0, 0]] * 4) and boundary.rewards.shape == (4,)
    assert boundary.stamp_ns == rig.now and boundary.axis_names == AXES


def test_lookahead_points_end_at_rest():
    rig = Rig(lookahead=3)
    rig.operator(Event.START)
    rig.answer([[0.001, 0, 0, 0]] * 4)
    cmd = rig.tick().command
    assert cmd.positions.shape == (3, 6) and np.allclose(cmd.times_s, [0.05, 0.1, 0.15])
    assert np.allclose(cmd.positions[:, 0], [0.001, 0.002, 0.003]) and np.allclose(cmd.velocities[:2, 0], 0.02)
    assert not cmd.velocities[-1].any()


def test_watchdog_holds_when_the_next_chunk_is_late_and_resumes_on_it():
    rig = Rig()
    rig.operator(Event.START)
    rig.answer([[0.002, 0, 0, 0]] * 4)
    rig.tick(4)
    held_at = rig.q.copy()
    rig.tick(3)  # no answer to the boundary request
    assert rig.holds == ["no fresh chunk before the current one ran out (watchdog)"]
    assert np.array_equal(rig.commands[-1].positions, held_at[None]) and not rig.commands[-1].velocities.any()
    n = len(rig.commands)
    rig.tick(2)
    assert len(rig.commands) == n  # the stop point is sent once
    rig.answer([[0.0, 0.002, 0, 0]] * 4, delay_ms=200)
    out = rig.tick()
    assert out.command.positions[0][1] == pytest.approx(0.002) and rig.ex.holding == ""
    # what /diagnostics reports: 5 control steps without a fresh chunk, 5 executed; the first row of the late
    # chunk times each stage from the times it carries (observation -> first row: the 5 missed periods and its own)
    assert (rig.ex.steps_missed, rig.ex.steps_executed) == (5, 5)
    stages = out.stages
    assert set(stages) == set(STAGES) and stages["obs_to_first_row"] == pytest.approx(6 * PERIOD * 1e-9)
    assert stages["obs_to_vla_output"] == pytest.approx(0.1)
    assert stages["vla_output_to_chunk_sent"] == pytest.approx(0.099)
    assert stages["chunk_sent_to_accepted"] == pytest.approx(0.001)
    assert sum(stages.values()) - stages["obs_to_first_row"] == pytest.approx(stages["obs_to_first_row"])
    assert rig.tick().stages == {}  # the chunk's later rows
    human = stage_latencies(ActionChunk(np.zeros((1, 4)), AXES, Source.HUMAN, 1, 0, sent_ns=5 * MS), 6 * MS, 9 * MS)
    assert set(human) == {"chunk_sent_to_accepted", "accepted_to_first_row", "obs_to_first_row"}  # no VLA stage


def test_stale_out_of_order_duplicate_and_foreign_chunks_are_refused():
    rig = Rig()
    rig.operator(Event.START)
    old = rig.requests[-1]
    rig.now += PERIOD
    rig.operator(Event.START)  # a restart: the first request is superseded
    current = rig.requests[-1]
    with pytest.raises(ChunkRejected, match="answers an older request"):
        rig.answer([[0, 0, 0, 0]] * 4, request=old)
    with pytest.raises(ChunkRejected, match="axis_names"):
        rig.answer([[0, 0, 0]] * 4, axes=("a", "b", "c"))
    bad = ActionChunk(np.zeros((4, 4)), AXES, stamp_ns=current.stamp_ns)
    bad.data[2, 1] = np.nan  # after validation: the executor checks again
    with pytest.raises(ChunkRejected, match="non-finite"):
        rig.ex.submit_chunk(bad, current.stamp_ns)
    with pytest.raises(ChunkRejected, match=r"0.600 s old"):
        rig.answer([[0, 0, 0, 0]] * 4, delay_ms=600)
    with pytest.raises(ChunkRejected, match="no chunk is awaited"):  # the stale answer closed the request
        rig.answer([[0, 0, 0, 0]] * 4, request=current)
    assert rig.ex.rejected == 5
    rig.tick()
    fresh = rig.requests[-1]
    assert fresh.need_chunk and fresh.stamp_ns > current.stamp_ns and fresh.step == 0  # asked again, new observation
    rig.answer([[0.001, 0, 0, 0]] * 4)
    with pytest.raises(ChunkRejected, match="no chunk is awaited"):
        rig.answer([[0.001, 0, 0, 0]] * 4, request=fresh)  # the same answer twice
    assert rig.tick().command.positions[0][0] == pytest.approx(0.001)


def test_an_unanswered_request_is_renewed():
    rig = Rig()
    rig.operator(Event.START)
    first = rig.requests[-1]
    rig.tick(11)  # 0.55 s > max_chunk_age_s
    assert len(rig.requests) == 2 and rig.requests[1].stamp_ns > first.stamp_ns


def test_a_silent_producer_is_named_once_within_a_chunk_period_and_the_arm_resumes():
    """C = 4 at 20 Hz: one chunk period is 0.2 s. The VLA's answers (vla/output stamps) tell which node stopped."""
    rig = Rig()
    rig.operator(Event.START)
    rig.answer([[0.002, 0, 0, 0]] * 4)
    rig.tick(4)  # the chunk runs out; its boundary request goes unanswered: the VLA is stopped
    stalls = [rig.tick().stall for _ in range(6)]
    noticed = [s for s in stalls if s]
    assert len(noticed) == 1 and noticed[0].startswith("vla/output silent for 0.25 s") and stalls.index(noticed[0]) == 4
    assert rig.ex.stalled == "vla/output" and rig.ex.stalls == 1
    # the VLA answers the renewed request, the actor does not: a new stall after the next chunk names action_chunk
    rig.tick(6)  # the unanswered request expires (max_chunk_age_s) and is renewed
    request = rig.requests[-1]
    rig.ex.on_vla_output(request.stamp_ns)
    rig.answer([[0.0, 0.002, 0, 0]] * 4, request, delay_ms=0)
    out = rig.tick()
    assert out.resumed == "vla/output is back: executing its chunk" and rig.ex.stalled == ""
    rig.tick(3)
    rig.ex.on_vla_output(rig.requests[-1].stamp_ns)
    stalls = [rig.tick().stall for _ in range(6)]
    assert [s.split(" silent")[0] for s in stalls if s] == ["action_chunk"] and rig.ex.stalls == 2
    assert sum(h.startswith("no fresh chunk") for h in rig.holds) == 2  # the hold itself: once per stall


def test_a_stall_names_the_vla_when_it_stops_after_answering_a_replaced_request():
    """The hand-off right after START replaces the start request: the VLA answered that one (the actor's chunk for it
    is refused, no longer awaited) and then stopped. The silent topic is the one owing the request awaited now."""
    rig = Rig()
    rig.operator(Event.START)
    start = rig.requests[-1]
    rig.tick()
    rig.operator(Event.HANDOFF)
    rig.ex.on_vla_output(start.stamp_ns)
    with pytest.raises(ChunkRejected):
        rig.answer([[0.001, 0, 0, 0]] * 4, start)
    stalls = [s for s in (rig.tick().stall for _ in range(6)) if s]
    assert [s.split(" silent")[0] for s in stalls] == ["vla/output"], stalls


def test_a_stall_is_renamed_when_the_renewed_request_shows_the_other_topic_silent():
    """The VLA stopped while delivering its answer: the executor got it, the actor did not. The stall first names the
    actor; the renewed request, unanswered by the VLA for a chunk period, renames it (the same stall, counted once)."""
    rig = Rig()
    rig.operator(Event.START)
    rig.answer([[0.002, 0, 0, 0]] * 4)
    rig.tick(4)
    rig.ex.on_vla_output(rig.requests[-1].stamp_ns)
    stalls = [s for s in (rig.tick().stall for _ in range(16)) if s]  # 0.8 s: the request is renewed at 0.5 s
    assert [s.split(" silent for ")[0] for s in stalls] == ["action_chunk", "vla/output"], stalls
    assert stalls[1].startswith("vla/output silent for 0.25 s") and rig.ex.stalls == 1
    rig.answer([[0.0, 0.002, 0, 0]] * 4, delay_ms=0)
    assert rig.tick().resumed == "vla/output is back: executing its chunk"


def test_stale_joint_states_and_tracking_errors_hold():
    rig = Rig()
    rig.operator(Event.START)
    rig.answer([[0.002, 0, 0, 0]] * 4)
    rig.tick()
    rig.now += 300 * MS  # no joint state for 0.3 s
    out = rig.absorb(rig.ex.tick(rig.now))
    assert "joint_states silent: the newest is 0.300 s old" in out.hold_reason
    rig.now += PERIOD
    again = rig.absorb(rig.ex.tick(rig.now))  # older still: the same hold, not a new stop point or log line
    assert again.command is None and not again.hold_reason and rig.holds.count(out.hold_reason) == 1
    rig.q = rig.q + np.array([0.0, 0.0, 0.0, 0.5, 0.0, 0.0])  # something pushed the wrist 0.5 rad
    out = rig.tick()
    assert out.hold_reason.startswith("tracking error 0.500") and np.allclose(out.command.positions[0], rig.q)
    assert out.requests[-1].need_chunk  # the dropped chunk is replaced by a fresh one


def test_handoff_starts_the_critical_phase_with_stride_observations():
    rig = Rig()
    rig.operator(Event.START)
    rig.answer([[0.001, 0, 0, 0]] * 4, source=Source.VLA)
    rig.tick()
    rig.operator(Event.HANDOFF)
    assert rig.events == [Event.START, Event.HANDOFF] and rig.ex.phase is Phase.CRITICAL
    handoff = rig.requests[-1]
    assert handoff.need_chunk and handoff.step == 1 and handoff.phase is Phase.CRITICAL
    rig.answer([[0.001, 0, 0, 0]] * 4)
    rig.tick(4)
    kinds = [(r.step, r.need_chunk) for r in rig.requests[2:]]
    assert kinds == [(3, False), (5, True)]  # stride 2 after the handoff at step 1, then the chunk boundary


def test_success_reports_the_reward_and_holds():
    rig = Rig()
    rig.operator(Event.START)
    rig.answer([[0.001, 0, 0, 0]] * 4)
    rig.tick(2)
    rig.operator(Event.SUCCESS)
    end = rig.requests[-1]
    assert end.terminal is Terminal.SUCCESS and not end.need_chunk and np.array_equal(end.rewards, [0.0, 1.0])
    assert rig.events[-1] == Event.SUCCESS and not rig.ex.running
    rig.tick()
    assert rig.holds[-1] == "no episode running"
    rig.operator(Event.START)
    assert rig.requests[-1].episode_id == 1 and rig.requests[-1].step == 0


def test_an_outcome_right_after_a_boundary_lands_on_a_held_step():
    rig = Rig()
    rig.operator(Event.START)
    rig.answer([[0.001, 0, 0, 0]] * 4)
    rig.tick(4)
    rig.operator(Event.FAILURE)
    end = rig.requests[-1]
    assert end.terminal is Terminal.FAILURE and end.step == 5 and np.array_equal(end.executed, np.zeros((1, 4)))


def test_reset_and_timeout_end_episodes_without_a_terminal_reward():
    rig = Rig(max_episode_s=1.0)
    rig.operator(Event.START)
    rig.operator(Event.RESET)
    assert rig.events == [Event.START, Event.RESET] and rig.requests[-1].terminal is Terminal.TIMEOUT
    rig.tick()
    assert rig.holds[-1] == "no episode running"
    rig.operator(Event.RESET)  # pressed again once the scene is reset: the next episode
    assert rig.events[-1] == Event.START and rig.ex.episode_id == 1
    rig.operator(Event.START)  # START restarts at once
    for _ in range(30):
        if rig.ex.pending_stamp_ns is not None:
            rig.answer([[0.0, 0, 0, 0]] * 4)
        rig.tick()
    assert Event.TIMEOUT in rig.events and not rig.ex.running


def test_joint_delta_chunks_run_in_joint_space_and_report_the_pose_change():
    rig = Rig()
    rig.operator(Event.START)
    joints = rig.ex.cfg.joint_names
    rig.answer([[0.001, 0, 0, 0, 0.01, 0]] * 4, axes=joints)
    out = rig.tick()
    assert np.allclose(out.command.positions[0] - Q0, [0.001, 0, 0, 0, 0.01, 0])
    rig.tick(3)
    assert np.allclose(rig.requests[-1].executed, [[0.001, 0, 0, 0]] * 4)  # pitch does not move the pose


def test_critical_mode_starts_episodes_in_the_critical_phase():
    rig = Rig(mode="critical")
    rig.operator(Event.START)
    assert rig.events == [Event.START, Event.HANDOFF] and rig.requests[-1].phase is Phase.CRITICAL


ADVERSARIAL = [1e30, -1e30, 3.4e38, 1e6, -1.0, 1.0, 1e-3, -1e-3, 0.0]


def test_adversarial_streams_never_break_a_limit_and_hold_on_timeouts():
    """Huge, NaN, stale, out-of-order and missing chunks, in random order; every command checked."""
    rig = Rig()
    rng = np.random.default_rng(0)
    rig.operator(Event.START)
    old_requests = []
    for _ in range(600):
        pending = rig.ex.pending_stamp_ns
        kind = rng.integers(6)
        rows = rng.choice(ADVERSARIAL, size=(4, 4)) * rng.choice([1.0, 1e-3], size=(4, 4))
        chunk = ActionChunk(rows.astype(np.float32), AXES, Source.ACTOR, 1, pending or 0)
        if kind == 0:
            chunk.data[rng.integers(4), rng.integers(4)] = rng.choice([np.nan, np.inf, -np.inf])
        delay = int(rng.choice([5, 30, 700])) * MS  # 700 ms: stale
        if kind == 1 and old_requests:
            chunk.stamp_ns = int(rng.choice(old_requests))  # out of order
        if kind == 5:
            chunk = None  # nothing arrives this tick
        if chunk is not None and chunk.stamp_ns:
            with contextlib.suppress(ChunkRejected):
                rig.ex.submit_chunk(chunk, chunk.stamp_ns + delay)
        if pending:
            old_requests.append(pending)
        if rng.random() < 0.02:
            rig.operator(rng.choice([Event.HANDOFF, Event.SUCCESS, Event.START, Event.RESET]))
        before = rig.q.copy()
        rig.tick()
        q = rig.commands[-1].positions
        assert np.isfinite(q).all()
        steps = np.diff(np.vstack([before, q]), axis=0)
        assert (np.abs(steps) <= rig.ex.filter.max_joint_step * (1 + 1e-9)).all()
        pose = np.array([rig.ex.kin.forward(p) for p in q])
        assert (pose >= rig.ex.filter.box_lo - 1e-12).all() and (pose <= rig.ex.filter.box_hi + 1e-12).all()
    assert rig.ex.rejected > 50 and any("watchdog" in h for h in rig.holds)


def vla_output(request: ChunkRequest, rng: np.random.Generator) -> VlaOutput:
    ref = ActionChunk(rng.normal(0, 1e-3, (4, 4)), AXES, Source.VLA, stamp_ns=request.stamp_ns)
    return VlaOutput(request, ref, rng.normal(size=8), rng.normal(size=12), "fake", request.stamp_ns)


def test_the_actor_core_learns_from_the_executor_requests():
    """The executor's requests are a valid stream for ActorCore: stride-2 transitions come out, and a chunk
    refused as stale is replaced after the fresh request (same step, new stamp)."""
    rig = Rig(mode="critical")
    rng = np.random.default_rng(0)
    rl = RLConfig(token_dim=8, hidden=(16,), chunk_len=4, action_dim=4, warmup_episodes=0)
    actor = ActorCore(rl, ActorConfig())
    transitions = []
    rig.operator(Event.START)
    answered = set()
    stale_once = True
    for _ in range(60):
        request = rig.requests[-1]
        if request.stamp_ns not in answered:
            answered.add(request.stamp_ns)
            step = actor.on_vla_output(vla_output(request, rng))
            transitions += step.transitions
            if step.chunk is not None:
                delay = 800 if stale_once and request.step > 0 else 20
                stale_once = stale_once and delay == 20
                try:
                    rig.ex.submit_chunk(step.chunk, request.stamp_ns + delay * MS)
                except ChunkRejected as exc:
                    assert "old" in str(exc)
        rig.tick()
    assert not stale_once and len(transitions) >= 10
    assert all(t.action.shape == (4, 4) and t.proprio.shape == (12,) for t in transitions)


def test_config_errors_name_fields():
    with pytest.raises(ConfigError, match=r"ExecutorConfig.ee_map"):
        ExecutorConfig(joint_names=("a", "b", "c", "d"))
    with pytest.raises(ValueError, match=r"Chunking.observe_stride"):
        Chunking(5, 2)
    with pytest.raises(ConfigError, match=r"ExecutorConfig.action_axes"):
        ExecutorConfig(action_axes=("x", "dy", "dz", "dyaw"))
