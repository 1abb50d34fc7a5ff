"""ActorCore on literal request streams: who drives, what is stored, re-sent outputs, waiting for the learner."""

import numpy as np
import pytest

from rlt.rl.actor_core import ActorConfig, ActorCore
from rlt.rl.config import RLConfig
from rlt.types import ActionChunk, ChunkRequest, Phase, Source, Terminal, VlaOutput

AXES = ("dx", "dy", "dz", "dyaw")
RL = RLConfig(token_dim=4, hidden=(8, 8), warmup_episodes=0, learning_starts=2, utd=5.0)


def output(
    step,
    phase=Phase.CRITICAL,
    need_chunk=None,
    executed=2,
    source=Source.ACTOR,
    terminal=Terminal.NONE,
    reward_last=0.0,
    episode=0,
):
    rows = np.full((executed, 4), 1e-3 * step, np.float32)
    rewards = np.zeros(executed, np.float32)
    if executed:
        rewards[-1] = reward_last
    req = ChunkRequest(
        episode,
        step,
        AXES,
        phase,
        step % 10 == 0 if need_chunk is None else need_chunk,
        terminal,
        rows,
        (source,) * executed,
        rewards,
        stamp_ns=1000 + step,
    )
    ref = ActionChunk(np.full((20, 4), 2e-3, np.float32), AXES, Source.VLA, stamp_ns=req.stamp_ns)
    return VlaOutput(req, ref, np.full(4, step, np.float32), np.zeros(12, np.float32), "fake", req.stamp_ns)


def test_approach_passes_the_reference_and_stores_nothing():
    core = ActorCore(RL, ActorConfig())
    step = core.on_vla_output(output(0, Phase.APPROACH, executed=0))
    assert step.chunk.source == Source.VLA and step.chunk.data.shape == (10, 4)
    np.testing.assert_array_equal(step.chunk.data, np.float32(2e-3))
    assert step.transitions == [] and step.chunk.policy_version == -1


def test_critical_phase_stores_stride_two_transitions_until_success():
    core = ActorCore(RL, ActorConfig(mode="base"))
    assert core.on_vla_output(output(0, executed=0)).transitions == []  # hand-off: nothing before it is stored
    stored = []
    for t in range(2, 14, 2):
        stored += core.on_vla_output(output(t)).transitions
    stored += core.on_vla_output(output(14, need_chunk=False, terminal=Terminal.SUCCESS, reward_last=1.0)).transitions
    assert stored == []  # "base" mode only evaluates
    core = ActorCore(RL, ActorConfig(mode="train"))
    core.on_vla_output(output(0, executed=0))
    for t in range(2, 14, 2):
        stored += core.on_vla_output(output(t)).transitions
    # window [0, 10) closes when the rows after step 10 are reported (at the output of step 12)
    assert [tr.step for tr in stored] == [0]
    last = core.on_vla_output(output(14, need_chunk=False, terminal=Terminal.SUCCESS, reward_last=1.0))
    assert last.chunk is None
    closing = last.transitions  # [2, 12) gets x_12; every later window ends with the success at step 13
    assert [(tr.step, tr.done) for tr in closing] == [(2, False)] + [(t, True) for t in range(4, 14, 2)]
    assert all(tr.rewards.sum() == 1.0 for tr in closing[1:]) and closing[0].rewards.sum() == 0
    np.testing.assert_array_equal(stored[0].rl_token, 0.0)  # x_0 = the token at the hand-off step
    np.testing.assert_array_equal(stored[0].next_rl_token, 10.0)  # x' = the token 10 steps later


def test_human_rows_mark_the_transition_and_replace_the_reference():
    core = ActorCore(RL, ActorConfig(mode="train"))
    core.on_vla_output(output(0, executed=0))
    core.set_human_chunk(ActionChunk(np.full((10, 4), -1e-3), AXES, Source.HUMAN))
    out = []
    for t in range(2, 14, 2):
        step = core.on_vla_output(output(t, source=Source.HUMAN))
        out += step.transitions
        if step.chunk is not None:
            assert step.chunk.source == Source.HUMAN
    assert len(out) == 1 and out[0].intervened
    np.testing.assert_array_equal(out[0].reference, out[0].action)  # ã := a_human


def test_intervention_ends_on_release_and_ignores_chunks_sent_before_it():
    core = ActorCore(RL, ActorConfig(mode="base"))
    human = ActionChunk(np.full((10, 4), -1e-3), AXES, Source.HUMAN, stamp_ns=500)
    core.set_human_chunk(human, received_ns=500)
    assert core.on_vla_output(output(0)).chunk.source == Source.HUMAN
    core.end_intervention(stamp_ns=600)  # INTERVENE_END
    assert not core.human_active
    core.set_human_chunk(ActionChunk(np.zeros((10, 4)), AXES, Source.HUMAN, stamp_ns=590), received_ns=700)
    assert not core.human_active  # sent before the release, arrived after it: ignored
    assert core.on_vla_output(output(10)).chunk.source == Source.VLA
    core.set_human_chunk(ActionChunk(np.zeros((10, 4)), AXES, Source.HUMAN, stamp_ns=800), received_ns=800)
    assert core.on_vla_output(output(20)).chunk.source == Source.HUMAN  # a new intervention


def test_a_silent_joystick_hands_control_back_after_the_timeout():
    core = ActorCore(RL, ActorConfig(mode="base"))
    core.set_human_chunk(ActionChunk(np.zeros((10, 4)), AXES, Source.HUMAN, stamp_ns=1), received_ns=1_000)
    assert not core.expire_human(now_ns=1_400, timeout_ns=500) and core.human_active
    assert core.expire_human(now_ns=1_600, timeout_ns=500) and not core.human_active
    assert not core.expire_human(now_ns=9_000, timeout_ns=500)  # nothing left to expire


def test_resent_output_is_answered_again_but_recorded_once():
    core = ActorCore(RL, ActorConfig(mode="train"))
    first = core.on_vla_output(output(0, executed=0))
    again = core.on_vla_output(output(0, executed=0))
    assert again.chunk is first.chunk and again.transitions == []


def test_waits_for_the_learner_only_in_train_mode_with_slack():
    core = ActorCore(RL, ActorConfig(mode="train", learner_slack_updates=10))
    core.sent = 4  # 4 transitions out: the learner owes 20 updates
    assert core.learner_behind
    core.learner_step = 10
    assert not core.learner_behind
    assert not ActorCore(RL, ActorConfig(mode="train")).learner_behind  # slack 0: never wait


def test_an_output_of_the_wrong_sizes_is_refused_and_changes_nothing():
    clean, hit = ActorCore(RL, ActorConfig(mode="train")), ActorCore(RL, ActorConfig(mode="train"))
    stored: dict[int, list] = {id(clean): [], id(hit): []}
    for t in range(0, 16, 2):
        out = output(t, executed=0 if t == 0 else 2)
        for core in (clean, hit):
            stored[id(core)] += core.on_vla_output(out).transitions
        if t == 4:
            foreign = VlaOutput(out.request, out.reference, np.zeros(64, np.float32), out.proprio, "other_vla", 1)
            with pytest.raises(ValueError, match=r"'other_vla': rl_token has shape \(64,\), this actor expects"):
                hit.on_vla_output(foreign)
    assert len(stored[id(hit)]) == len(stored[id(clean)]) > 0
    for a, b in zip(stored[id(hit)], stored[id(clean)], strict=True):
        np.testing.assert_array_equal(a.rl_token, b.rl_token)
        np.testing.assert_array_equal(a.next_rl_token, b.next_rl_token)


def test_a_human_chunk_this_actor_cannot_execute_is_refused_and_the_actor_keeps_driving():
    core = ActorCore(RL, ActorConfig(mode="base"))
    core.on_vla_output(output(0, executed=0))  # the driver's axes are now known
    for bad, message in [(ActionChunk(np.zeros((0, 4)), AXES, Source.HUMAN), r"shape \(0, 4\).*10 rows x 4 axes"),
                         (ActionChunk(np.zeros((10, 3)), AXES[:3], Source.HUMAN), r"shape \(10, 3\)"),
                         (ActionChunk(np.zeros((10, 4)), ("a", "b", "c", "d"), Source.HUMAN), "axis_names")]:
        with pytest.raises(ValueError, match=message):
            core.set_human_chunk(bad)
    assert not core.human_active and core.on_vla_output(output(10)).chunk.source is Source.VLA
