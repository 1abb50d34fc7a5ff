"""Replay buffer: row layout, normalization, ring overwrite, exact save/load round trip, thread safety."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from rlt.rl.replay import ReplayBuffer
from rlt.rl.units import Units
from rlt.types import Transition

Z, P, C, D = 3, 2, 2, 2


def transition(i: float, done: bool = False) -> Transition:
    """Every field filled with a value derived from i, so a row shows where it came from."""
    return Transition(
        rl_token=np.full(Z, i), proprio=np.full(P, 2 * i), action=np.full((C, D), 0.001 * i),
        reference=np.full((C, D), -0.001 * i), rewards=np.array([i, 0.0]), done=done, intervened=False,
        next_rl_token=np.full(Z, i + 0.5), next_proprio=np.full(P, 2 * i + 1), next_reference=np.zeros((C, D)),
    )


def make(capacity: int = 4, seed: int = 0) -> ReplayBuffer:
    units = Units(np.array([0.01, 0.02], np.float32), np.array([2.0, 4.0], np.float32))
    return ReplayBuffer(capacity, Z, P, C, D, units=units, seed=seed)


def test_row_holds_normalized_fields_at_their_slices():
    buf = make()
    buf.add(transition(1.0, done=True))
    batch = buf.sample(3)
    assert torch.allclose(batch.state[0], torch.tensor([1.0, 1.0, 1.0, 2 / 2, 2 / 4]))
    assert torch.allclose(batch.action[0], torch.tensor([0.1, 0.05, 0.1, 0.05]))  # 0.001 / (0.01, 0.02)
    assert torch.allclose(batch.reference[0], -batch.action[0])
    assert torch.allclose(batch.next_state[0], torch.tensor([1.5, 1.5, 1.5, 3 / 2, 3 / 4]))
    assert torch.equal(batch.rewards[0], torch.tensor([1.0, 0.0]))
    assert batch.done[0] == 1.0 and batch.intervened[0] == 0.0
    assert torch.equal(batch.critic_input[0], torch.cat([batch.action[0], batch.state[0]]))
    assert torch.equal(batch.actor_input(True)[0], torch.cat([batch.state[0], batch.reference[0]]))
    assert torch.equal(batch.next_actor_input(True)[0], torch.cat([batch.next_state[0], batch.next_reference[0]]))
    assert torch.equal(batch.actor_input(False)[0], batch.state[0])


def test_actions_are_clipped_to_the_bound():
    buf = make()
    t = transition(1.0)
    t.action[:] = 1.0  # 100x the bound
    buf.add(t)
    assert buf.sample(1).action.max() == 1.0


def test_ring_overwrites_oldest_and_counts_added():
    buf = make(capacity=3)
    for i in range(5):
        buf.add(transition(float(i)))
    assert len(buf) == 3 and buf.added == 5
    assert buf.rows()[:, buf.layout.rewards.start].tolist() == [2.0, 3.0, 4.0]  # oldest first


def test_add_rows_matches_one_by_one_adds():
    one, bulk = make(capacity=3), make(capacity=3)
    one.add(transition(-1.0))
    bulk.add(transition(-1.0))
    for i in range(5):
        one.add(transition(float(i)))
    bulk.add_rows(np.stack([bulk.pack(transition(float(i))) for i in range(5)]))
    assert np.array_equal(one._storage.numpy(), bulk._storage.numpy()) and one.added == bulk.added == 6
    one.add(transition(7.0))
    bulk.add(transition(7.0))
    assert np.array_equal(one.rows(), bulk.rows())
    with pytest.raises(ValueError, match=r"add_rows: expected float32\[N, 26\]"):
        bulk.add_rows(np.zeros((2, 5)))


def test_bad_shapes_name_the_field():
    buf = make()
    bad = transition(1.0)
    bad.rl_token = np.zeros(Z + 1, np.float32)
    bad.next_rl_token = np.zeros(Z + 1, np.float32)
    with pytest.raises(ValueError, match=r"Transition.rl_token: expected shape 3, got 4"):
        buf.add(bad)
    with pytest.raises(RuntimeError, match="empty"):
        buf.sample(2)


def test_save_load_round_trip_is_exact(tmp_path):
    buf = make(capacity=3, seed=7)
    for i in range(5):  # wrapped: cursor in the middle
        buf.add(transition(float(i)))
    buf.sample(2)  # advance the generator
    buf.save(tmp_path / "replay.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["replay.npz"]  # no temporary file left
    other = make(capacity=3, seed=123)
    other.load(tmp_path / "replay.npz")
    assert np.array_equal(other.rows(), buf.rows()) and other.added == buf.added and len(other) == len(buf)
    assert torch.equal(other.sample(4).rows, buf.sample(4).rows)  # generator restored too
    buf.add(transition(9.0))
    other.add(transition(9.0))  # the same row is overwritten next
    assert np.array_equal(other.rows(), buf.rows())


def test_load_into_other_capacity_keeps_newest(tmp_path):
    buf = make(capacity=3)
    for i in range(5):
        buf.add(transition(float(i)))
    buf.save(tmp_path / "r.npz")
    small = make(capacity=2)
    small.load(tmp_path / "r.npz")
    assert small.rows()[:, small.layout.rewards.start].tolist() == [3.0, 4.0]
    with pytest.raises(ValueError, match="token_dim"):
        ReplayBuffer(3, Z + 1, P, C, D).load(tmp_path / "r.npz")


def test_concurrent_add_and_sample():
    buf = make(capacity=64)
    buf.add(transition(0.0))
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i in range(300):
                buf.add(transition(float(i)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for th in threads:
        th.start()
    for _ in range(300):
        rows = buf.sample(16)
        i = rows.rewards[:, 0]
        assert torch.allclose(rows.state[:, 0], i) and torch.allclose(rows.next_state[:, 0], i + 0.5)  # whole rows
    for th in threads:
        th.join()
    assert not errors and buf.added == 901
    assert buf.wait_for_more(900, timeout=0.0) and not buf.wait_for_more(901, timeout=0.01)
