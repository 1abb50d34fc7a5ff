"""End-to-end learning: on a chunk bandit whose reference is biased by an offset the state reveals, the trained
actor must land much closer to the optimal chunk than the reference it is anchored to."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlt.rl.config import RLConfig
from rlt.rl.learner import Learner
from rlt.types import Transition

Z, P, C, D = 8, 4, 4, 2


class BiasedReferenceTask:
    """State z ~ U(-1, 1)^Z. Optimal chunk a* = 0.5 tanh(A z); reference ã = a* + 0.3 tanh(B z) (state-dependent
    bias); reward −4 ||a − a*||² after the first step, then the episode ends (done). The BC optimum with β = 1 is
    (4 a* + ã) / 5, i.e. 1/25 of the reference's squared error."""

    def __init__(self) -> None:
        rng = np.random.default_rng(100)
        self.a = rng.normal(size=(C * D, Z)) / np.sqrt(Z)
        self.b = rng.normal(size=(C * D, Z)) / np.sqrt(Z)

    def chunks(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """z float[N, Z] -> (optimal, reference) float32[N, C, D]."""
        best = 0.5 * np.tanh(z @ self.a.T)
        ref = np.clip(best + 0.3 * np.tanh(z @ self.b.T), -1, 1)
        return best.reshape(-1, C, D).astype(np.float32), ref.reshape(-1, C, D).astype(np.float32)

    @staticmethod
    def error(chunk: np.ndarray, best: np.ndarray) -> float:
        return float(((chunk - best) ** 2).sum((1, 2)).mean())


def train(seed: int, rounds: int = 120, per_round: int = 16) -> tuple[float, float]:
    """Online loop: act (exploring), store, update within the UTD budget. -> (reference error, actor error)."""
    task = BiasedReferenceTask()
    cfg = RLConfig(token_dim=Z, proprio_dim=P, chunk_len=C, action_dim=D, action_scale=(1.0,) * D, hidden=(64, 64),
                   batch_size=64, learning_starts=64, utd=2.0, sigma=0.1, buffer_capacity=10_000, seed=seed,
                   value_range=(-100.0, 0.0))  # rewards are negative squared errors
    learner = Learner(cfg)
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        z = rng.uniform(-1, 1, (per_round, Z)).astype(np.float32)
        p = rng.uniform(-1, 1, (per_round, P)).astype(np.float32)
        best, ref = task.chunks(z)
        action = learner.agent.act(torch.from_numpy(np.concatenate([z, p], 1)), torch.from_numpy(ref), True).numpy()
        reward = -4.0 * ((action - best) ** 2).sum((1, 2))
        for i in range(per_round):
            rewards = np.zeros(C, np.float32)
            rewards[0] = reward[i]
            learner.add(Transition(z[i], p[i], action[i], ref[i], rewards, True, False, z[i], p[i], ref[i]))
        if learner.update_budget() > learner.updates:
            learner.train(learner.update_budget() - learner.updates)
    z = np.random.default_rng(999).uniform(-1, 1, (1000, Z)).astype(np.float32)
    best, ref = task.chunks(z)
    x = torch.from_numpy(np.concatenate([z, np.zeros((1000, P), np.float32)], 1))
    mean = learner.agent.act(x, torch.from_numpy(ref), explore=False).numpy()
    return task.error(ref, best), task.error(mean, best)


@pytest.mark.parametrize("seed", [0, 1])
def test_actor_beats_biased_reference(seed):
    ref_error, actor_error = train(seed)
    assert actor_error < 0.5 * ref_error, (ref_error, actor_error)  # measured: ~0.2–0.25 × the reference's error
