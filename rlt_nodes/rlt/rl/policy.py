"""`ChunkPolicy`: the actor node's side of RL — picks each executed chunk from the reference and the actor.

This module owns acting: warmup (the reference passes through unchanged), exploration (μ + σε, clipped to the
bounds), evaluation (the mean), the physical ↔ normalized conversion around the actor, and hot-swapping actor
weights. `load_weights` may be called from any thread (a subscription callback): it validates the snapshot at
once and parks it; the next `act` — i.e. the next chunk boundary — switches to it, so a chunk is never produced
by a mix of two versions. Until the first snapshot arrives the policy acts like warmup.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Mapping

import numpy as np
import torch

from rlt.rl.config import RLConfig
from rlt.rl.networks import Actor, resolve_device
from rlt.rl.units import Units
from rlt.types import Source, as_array


@dataclasses.dataclass(frozen=True)
class PolicyChunk:
    """One chunk to execute: float32[C, D] in physical units, who produced it and with which weights."""

    data: np.ndarray  # float32[C, D]
    source: Source  # VLA (reference passed through) or ACTOR
    version: int  # weights version used, -1 = none yet


class ChunkPolicy:
    """Acts with the actor μθ(x, ã) on chunk boundaries; see the module docstring."""

    def __init__(self, cfg: RLConfig) -> None:
        self.cfg = cfg
        self.units = Units.from_config(cfg)
        self.device = resolve_device(cfg.device)
        self.actor = Actor(cfg.state_dim, cfg.chunk_len, cfg.action_dim, cfg.hidden, cfg.use_reference,
                           device=self.device, seed=cfg.seed)
        self.version = -1  # weights in use
        self._pending: tuple[int, dict[str, np.ndarray]] | None = None
        self._lock = threading.Lock()
        self._gen = torch.Generator(device=self.device).manual_seed(cfg.seed + 4)

    @property
    def has_weights(self) -> bool:
        return self.version >= 0 or self._pending is not None

    def load_weights(self, version: int, arrays: Mapping[str, np.ndarray], architecture: str = "") -> bool:
        """Validate a snapshot now (ValueError naming a wrong name, shape or size) and use it from the next `act`.

        architecture: PolicyWeights.architecture JSON; when given it must equal this actor's.
        Returns False, and keeps what it has, for a version not newer than the one in use or parked: a re-delivered
        or out-of-order snapshot is never run as newer (the learner numbers versions on across its restarts).
        """
        with self._lock:
            newest = max(self.version, self._pending[0] if self._pending is not None else -1)
        if int(version) <= newest:
            return False
        if architecture:
            theirs, mine = json.loads(architecture), self.actor.architecture()
            diff = {k: (theirs.get(k), v) for k, v in mine.items() if theirs.get(k) != v}
            if diff:
                raise ValueError(f"PolicyWeights.architecture: sender/receiver differ in {diff}")
        self.actor.check_arrays(arrays)
        with self._lock:
            self._pending = (int(version), {k: np.array(v, np.float32) for k, v in arrays.items()})
        return True

    def act(
        self,
        rl_token: np.ndarray,
        proprio: np.ndarray,
        reference: np.ndarray,
        *,
        explore: bool = True,
        warmup: bool = False,
    ) -> PolicyChunk:
        """The chunk to execute from state (z_rl[Z], proprio[P]) and the VLA's reference float32[H >= C, D].

        warmup (or no weights yet): the reference's first C rows unchanged. Otherwise μθ(x, ã), plus σ noise when
        `explore` (training) — pass explore=False to evaluate. The reference is always given to the actor here.
        """
        self._apply_pending()
        c, d = self.cfg.chunk_len, self.cfg.action_dim
        ref = as_array("ChunkPolicy.reference", reference, 2, (None, d))
        if ref.shape[0] < c:
            raise ValueError(f"ChunkPolicy.reference: expected at least {c} rows (chunk_len), got {ref.shape[0]}")
        ref = ref[:c]
        if warmup or self.version < 0:
            return PolicyChunk(ref.copy(), Source.VLA, self.version)
        z = as_array("ChunkPolicy.rl_token", rl_token, 1, (self.cfg.token_dim,))
        p = self.units.proprio_to_norm(as_array("ChunkPolicy.proprio", proprio, 1, (self.cfg.proprio_dim,)))
        x = torch.from_numpy(np.concatenate([z, p])[None]).to(self.device)  # float32[1, S]
        ref_norm = torch.from_numpy(self.units.action_to_norm(ref)[None]).to(self.device)  # float32[1, C, D]
        with torch.no_grad():
            mu = self.actor.act_on(self.actor.inputs(x, ref_norm), self.cfg.sigma if explore else 0.0, self._gen)
        chunk = self.units.action_to_phys(mu.view(c, d).cpu().numpy())
        return PolicyChunk(chunk, Source.ACTOR, self.version)

    def _apply_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            self.actor.load_arrays(pending[1])
            self.version = pending[0]
