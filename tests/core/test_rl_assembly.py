"""TransitionAssembler on literal streams: stride-2 windows, termination, time limit, interventions."""

from __future__ import annotations

import numpy as np
import pytest

from rlt.rl.assembly import TransitionAssembler
from rlt.types import Transition

C, D = 4, 1


def state(t: int) -> dict[str, np.ndarray]:
    """x_t and ã_t that encode t: token [t], proprio [-t], reference rows 10t + i (H = 6 rows, C kept)."""
    return {"rl_token": np.array([t]), "proprio": np.array([-t]), "reference": 10.0 * t + np.arange(6.0)[:, None]}


def run(steps: int, *, every: int = 1, done_at: int = -1, timeout_at: int = -1, human: tuple[int, ...] = (),
        missing: tuple[int, ...] = ()) -> list[Transition]:
    """Executed action a_t = [t], reward r_t = t / 100; state supplied at multiples of `every`."""
    asm = TransitionAssembler(C, D, stride=2, episode_id=7)
    out: list[Transition] = []
    for t in range(steps):
        obs = state(t) if t % every == 0 and t not in missing else {}
        out += asm.step(np.array([float(t)]), t / 100, done=t == done_at, timeout=t == timeout_at,
                        intervened=t in human, **obs)
        if asm.ended:
            break
    return out


def starts(ts: list[Transition]) -> list[int]:
    return [int(t.rl_token[0]) for t in ts]


def test_stride_two_windows_with_next_state_c_steps_later():
    ts = run(11)
    assert starts(ts) == [0, 2, 4, 6]  # window 8 still waits for x_12
    t = ts[1]
    assert t.step == 2 and t.episode_id == 7
    assert t.action[:, 0].tolist() == [2.0, 3.0, 4.0, 5.0]
    assert t.rewards.tolist() == pytest.approx([0.02, 0.03, 0.04, 0.05])
    assert t.reference[:, 0].tolist() == [20.0, 21.0, 22.0, 23.0]  # first C rows of ã_2
    assert t.next_rl_token.tolist() == [6.0] and t.next_proprio.tolist() == [-6.0]
    assert t.next_reference[:, 0].tolist() == [60.0, 61.0, 62.0, 63.0]
    assert not t.done and not t.intervened


def test_states_only_at_stride_steps_give_the_same_transitions():
    full, sparse = run(11), run(11, every=2)
    assert starts(full) == starts(sparse)
    assert all(np.array_equal(a.action, b.action) for a, b in zip(full, sparse, strict=True))


def test_termination_pads_and_marks_done():
    ts = run(20, done_at=6)
    assert starts(ts) == [0, 2, 4, 6]
    assert [t.done for t in ts] == [False, False, True, True]
    w4 = ts[2]
    assert w4.action[:, 0].tolist() == [4.0, 5.0, 6.0, 0.0]  # zero-padded after the terminal step
    assert w4.rewards.tolist() == pytest.approx([0.04, 0.05, 0.06, 0.0])
    assert w4.next_rl_token.tolist() == [6.0]  # copy of the last observed state
    assert ts[3].action[:, 0].tolist() == [6.0, 0.0, 0.0, 0.0]


def test_step_after_the_end_needs_reset():
    asm = TransitionAssembler(C, D, stride=2)
    asm.step(np.array([0.0]), 0.0, done=True, **state(0))
    with pytest.raises(RuntimeError, match="reset"):
        asm.step(np.array([0.0]), 0.0)
    asm.reset(episode_id=1)
    assert asm.step(np.array([0.0]), 0.0, **state(0)) == []


def test_time_limit_drops_windows_crossing_the_end():
    ts = run(20, timeout_at=6)
    assert starts(ts) == [0, 2] and not any(t.done for t in ts)


def test_intervention_replaces_reference_with_executed_chunk():
    ts = run(11, human=(5,))
    flags = {int(t.rl_token[0]): t.intervened for t in ts}
    assert flags == {0: False, 2: True, 4: True, 6: False}
    w2 = ts[1]
    assert np.array_equal(w2.reference, w2.action)  # ã := a_human (the executed chunk)
    assert ts[0].reference[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_missing_next_state_drops_the_window():
    assert starts(run(11, missing=(8,))) == [0, 2, 6]


def test_bad_inputs_name_the_field():
    asm = TransitionAssembler(C, D, stride=2)
    with pytest.raises(ValueError, match="together"):
        asm.step(np.array([0.0]), 0.0, rl_token=np.zeros(1))
    with pytest.raises(ValueError, match="reference: expected at least 4 rows"):
        asm.step(np.array([0.0]), 0.0, rl_token=np.zeros(1), proprio=np.zeros(1), reference=np.zeros((3, 1)))
    with pytest.raises(ValueError, match=r"action: expected shape 1"):
        asm.step(np.zeros(2), 0.0)
    with pytest.raises(ValueError, match="stride"):
        TransitionAssembler(C, D, stride=3)
