"""Physical ↔ normalized units of actions and proprio, the one place where `RLConfig`'s scales are applied.

Chunks travel in physical units (m, rad per control step); the networks, the replay buffer and the losses work in
normalized units where each action dimension's bound `action_scale[d]` maps to 1. Normalized actions are clipped
to [-1, 1]: the robot clips to the same bound, so a larger value was never executed.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rlt.rl.config import RLConfig


@dataclasses.dataclass(frozen=True)
class Units:
    """Per-dimension scales: actions a_norm = clip(a / action_scale, -1, 1), proprio p_norm = p / proprio_scale."""

    action_scale: np.ndarray  # float32[D]
    proprio_scale: np.ndarray  # float32[P]

    @classmethod
    def from_config(cls, cfg: RLConfig) -> Units:
        action = np.asarray(cfg.action_scale, np.float32)
        proprio = np.broadcast_to(np.asarray(cfg.proprio_scale, np.float32), (cfg.proprio_dim,)).copy()
        return cls(action, proprio)

    @classmethod
    def identity(cls, action_dim: int, proprio_dim: int) -> Units:
        return cls(np.ones(action_dim, np.float32), np.ones(proprio_dim, np.float32))

    def action_to_norm(self, chunk: np.ndarray) -> np.ndarray:
        """float32[..., D] physical -> float32[..., D] in [-1, 1]."""
        return np.clip(chunk / self.action_scale, -1.0, 1.0, dtype=np.float32)

    def action_to_phys(self, chunk: np.ndarray) -> np.ndarray:
        """float32[..., D] normalized -> float32[..., D] physical."""
        return (chunk * self.action_scale).astype(np.float32, copy=False)

    def proprio_to_norm(self, proprio: np.ndarray) -> np.ndarray:
        """float32[..., P] physical -> float32[..., P] scaled."""
        return (proprio / self.proprio_scale).astype(np.float32, copy=False)

    def to_json(self) -> dict[str, list[float]]:
        return {"action_scale": self.action_scale.tolist(), "proprio_scale": self.proprio_scale.tolist()}
