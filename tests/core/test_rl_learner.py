"""Learner loop (UTD budget, rate cap, weight snapshots), actor weights on the wire, checkpoints, ChunkPolicy."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rlt.config import ConfigError
from rlt.rl import learner as learner_module
from rlt.rl.config import RLConfig
from rlt.rl.learner import Learner
from rlt.rl.policy import ChunkPolicy
from rlt.types import Source, Transition

CFG = RLConfig(token_dim=6, proprio_dim=3, chunk_len=4, action_dim=2, action_scale=(0.01, 0.1), hidden=(16, 16),
               batch_size=16, learning_starts=20, utd=2.0, weights_every=10, buffer_capacity=500, seed=1)


def transition(rng: np.random.Generator, cfg: RLConfig = CFG) -> Transition:
    c, d, z, p = cfg.chunk_len, cfg.action_dim, cfg.token_dim, cfg.proprio_dim
    scale = np.asarray(cfg.action_scale, np.float32)
    return Transition(
        rl_token=rng.normal(size=z), proprio=rng.normal(size=p), action=rng.uniform(-1, 1, (c, d)) * scale,
        reference=rng.uniform(-1, 1, (c, d)) * scale, rewards=rng.uniform(size=c), done=bool(rng.uniform() < 0.2),
        intervened=False, next_rl_token=rng.normal(size=z), next_proprio=rng.normal(size=p),
        next_reference=rng.uniform(-1, 1, (c, d)) * scale,
    )


def filled(n: int, cfg: RLConfig = CFG) -> Learner:
    learner = Learner(cfg)
    rng = np.random.default_rng(0)
    for _ in range(n):
        learner.add(transition(rng, cfg))
    return learner


# ---------------------------------------------------------------------- config
def test_config_cross_field_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"RLConfig.action_scale=.*action_dim=6"):
        RLConfig(action_dim=6)
    with pytest.raises(ConfigError, match=r"RLConfig.proprio_scale"):
        RLConfig(proprio_scale=(1.0, 2.0))
    with pytest.raises(ConfigError, match=r"RLConfig.stride=3: must divide chunk_len=10"):
        RLConfig(stride=3)
    with pytest.raises(ConfigError, match=r"RLConfig.device"):
        RLConfig(device="tpu")
    with pytest.raises(ConfigError, match=r"RLConfig.hidden"):
        RLConfig(hidden=())
    assert RLConfig().state_dim == 64 + 12


# ---------------------------------------------------------------------- run loop
def test_run_respects_learning_start_utd_budget_and_publishes_weights():
    learner = filled(CFG.learning_starts - 1)
    published: list[int] = []
    stop = threading.Event()
    thread = threading.Thread(target=learner.run, args=(stop, lambda step, w: published.append(step)))
    thread.start()
    try:
        time.sleep(0.2)
        assert learner.updates == 0  # below learning_starts
        rng = np.random.default_rng(1)
        for _ in range(11):  # 30 transitions -> budget 60
            learner.add(transition(rng))
        deadline = time.monotonic() + 10
        while learner.updates < 60 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        assert learner.updates == learner.update_budget() == 60
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert published == [10, 20, 30, 40, 50, 60]
    stats = learner.stats()
    assert stats["updates"] == 60 and np.isfinite(stats["critic_loss"]) and np.isfinite(stats["bc"])


def test_run_rate_cap():
    learner = filled(200, CFG.replace(max_updates_per_s=40.0))
    stop = threading.Event()
    thread = threading.Thread(target=learner.run, args=(stop, lambda *_: None))
    start = time.monotonic()
    thread.start()
    time.sleep(0.5)
    stop.set()
    thread.join(timeout=5)
    assert 5 <= learner.updates <= 40 * (time.monotonic() - start) + 2


# ---------------------------------------------------------------------- actor weights
def test_actor_state_round_trip_and_errors():
    a, b = filled(30), Learner(CFG.replace(seed=9))
    a.train(6)
    state = a.actor_state()
    assert all(v.dtype == np.float32 for v in state.values())
    assert {k: v.shape for k, v in state.items()} == a.agent.actor.shapes()
    b.load_actor_state(state)
    assert all(np.array_equal(v, b.actor_state()[k]) for k, v in state.items())
    assert torch.equal(b.agent.actor_target.flat, b.agent.actor.flat)
    bad = dict(state, w0=np.zeros((1, 16, 5), np.float32))
    with pytest.raises(ValueError, match=r"Actor weights\['w0'\]: expected shape \[1, 16, 17\], got \[1, 16, 5\]"):
        b.load_actor_state(bad)
    with pytest.raises(ValueError, match=r"missing \['b2'\]"):
        b.load_actor_state({k: v for k, v in state.items() if k != "b2"})
    assert json.loads(a.architecture())["hidden"] == [16, 16]


# ---------------------------------------------------------------------- checkpoints
def test_checkpoint_resumes_exactly(tmp_path):
    a = filled(100)
    a.train(7)
    a.save_checkpoint(tmp_path)
    a.train(5)
    b = Learner(CFG.replace(seed=42))
    b.load_checkpoint(tmp_path)
    assert b.updates == 7 and b.buffer.added == 100
    b.train(5)
    for name in ("actor", "critic", "actor_target", "critic_target"):
        assert torch.equal(getattr(a.agent, name).flat, getattr(b.agent, name).flat), name
    with pytest.raises(ValueError, match=r"RLConfig.hidden=\(16, 16\) in the checkpoint, \(8, 8\) here"):
        Learner(CFG.replace(hidden=(8, 8))).load_checkpoint(tmp_path)


def test_failed_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    a = filled(50)
    first = a.save_checkpoint(tmp_path)
    a.train(3)

    def crash(*_: object) -> None:
        raise KeyboardInterrupt("killed while publishing")

    monkeypatch.setattr(learner_module, "_write_atomic", crash)
    with pytest.raises(KeyboardInterrupt):
        a.save_checkpoint(tmp_path)
    b = Learner(CFG)
    assert b.load_checkpoint(tmp_path) == first and b.updates == 0


KILL_CHILD = """
import sys, numpy as np
sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
from test_rl_learner import filled
learner = filled(400)
print("ready", flush=True)
while True:
    learner.train(1)
    learner.save_checkpoint({directory!r})
"""


def test_sigkill_during_saves_leaves_a_loadable_checkpoint(tmp_path):
    root = Path(learner_module.__file__).resolve().parents[2]
    code = KILL_CHILD.format(root=str(root), tests=str(Path(__file__).parent), directory=str(tmp_path))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 20
        while not (tmp_path / learner_module.LATEST).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    b = Learner(CFG)
    b.load_checkpoint(tmp_path)
    assert b.updates >= 1 and b.buffer.added == 400


# ---------------------------------------------------------------------- acting
def test_policy_warmup_pending_swap_and_units():
    policy = ChunkPolicy(CFG)
    rng = np.random.default_rng(0)
    z, p = rng.normal(size=6), rng.normal(size=3)
    ref = rng.uniform(-1, 1, (7, 2)) * np.array([0.01, 0.1])  # H = 7 >= C rows
    first = policy.act(z, p, ref)
    assert first.source == Source.VLA and first.version == -1 and np.allclose(first.data, ref[:4])  # no weights yet
    learner = filled(30)
    learner.train(4)
    policy.load_weights(3, learner.actor_state(), learner.architecture())
    assert policy.version == -1  # parked until the next chunk
    assert policy.act(z, p, ref, warmup=True).source == Source.VLA
    assert policy.version == 3
    mean = policy.act(z, p, ref, explore=False)
    assert mean.source == Source.ACTOR and mean.version == 3 and mean.data.shape == (4, 2)
    assert np.all(np.abs(mean.data) <= np.array([0.01, 0.1]) + 1e-9)  # bounded in physical units
    x = torch.from_numpy(np.concatenate([z, p]).astype(np.float32))[None]
    ref_norm = torch.from_numpy((ref[:4] / np.array([0.01, 0.1])).astype(np.float32))[None]
    expected = learner.agent.act(x, ref_norm, explore=False)[0].numpy() * np.array([0.01, 0.1])
    assert np.allclose(mean.data, expected, atol=1e-7)
    noisy = np.stack([policy.act(z, p, ref).data for _ in range(200)])
    assert noisy.std(0).mean() > 0 and np.allclose(noisy.mean(0), mean.data, atol=0.02 * 0.1)


def test_policy_rejects_bad_weights_without_touching_current():
    policy = ChunkPolicy(CFG)
    state = filled(30).actor_state()
    with pytest.raises(ValueError, match="expected shape"):
        policy.load_weights(1, dict(state, w1=np.zeros((1, 2, 2), np.float32)))
    other = json.dumps(dict(json.loads(Learner(CFG).architecture()), hidden=[8]))
    with pytest.raises(ValueError, match="hidden"):
        policy.load_weights(1, state, other)
    assert not policy.has_weights
    with pytest.raises(ValueError, match=r"ChunkPolicy.reference: expected at least 4 rows"):
        policy.act(np.zeros(6), np.zeros(3), np.zeros((2, 2)))
