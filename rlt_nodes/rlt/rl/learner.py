"""`Learner`: the online training loop around the TD3 agent and its replay buffer, plus checkpoints.

This module owns the update schedule against data arrival (UTD budget, learning start, rate cap), the actor
snapshots handed to the caller for publishing, and atomic checkpoints. The learner node feeds `add` from its
subscription callback and runs `run` in a plain thread; nothing here knows about ROS.

Checkpoint layout (`save_checkpoint(dir)`): `dir/ckpt_<updates>_<ns>/{learner.pt, replay.npz, meta.json}` plus
`dir/LATEST` naming the newest one. A checkpoint is written into a hidden temporary directory, renamed into place,
and only then published by atomically replacing LATEST, so a SIGKILL at any moment leaves the previous checkpoint
loadable. `learner.pt` holds tensors and plain containers only and is read with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from rlt.rl.config import RLConfig
from rlt.rl.networks import resolve_device
from rlt.rl.replay import ReplayBuffer
from rlt.rl.td3 import TD3
from rlt.rl.units import Units
from rlt.types import Transition

LATEST = "LATEST"
# RLConfig fields that fix tensor shapes: a checkpoint only loads into a learner with the same values
SHAPE_FIELDS = ("token_dim", "proprio_dim", "chunk_len", "action_dim", "hidden", "use_reference", "buffer_capacity")

WeightsCallback = Callable[[int, dict[str, np.ndarray]], None]


class Learner:
    """Owns the agent, its optimizers and the replay buffer; thread-safe between `add`, `run` and checkpoints."""

    def __init__(self, cfg: RLConfig) -> None:
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.units = Units.from_config(cfg)
        self.buffer = ReplayBuffer(
            cfg.buffer_capacity, cfg.token_dim, cfg.proprio_dim, cfg.chunk_len, cfg.action_dim,
            units=self.units, device=self.device, seed=cfg.seed + 3,
        )
        self.agent = TD3(cfg, self.device)
        self._lock = threading.RLock()  # the agent: update steps vs checkpoints and weight loading
        self._stats: dict[str, Tensor] = {}

    # ------------------------------------------------------------------ data and updates
    def add(self, t: Transition) -> None:
        """Store one transition (physical units, as on the wire); callable from any thread."""
        self.buffer.add(t)

    @property
    def updates(self) -> int:
        """Critic updates done so far."""
        return self.agent.updates

    def update_budget(self, added: int | None = None) -> int:
        """Updates allowed after `added` transitions: utd × added once learning_starts were added, else 0."""
        added = self.buffer.added if added is None else added
        return int(self.cfg.utd * added) if added >= self.cfg.learning_starts else 0

    def train(self, n: int = 1, stats: bool = True) -> None:
        """Run `n` updates now, ignoring the budget (offline training, tests).

        stats: keep the losses of the last `actor_every` of them (so an actor update is among them) for `stats()`.
        """
        if len(self.buffer) == 0:
            raise RuntimeError("Learner.train: the replay buffer is empty")
        with self._lock:
            for i in range(n):
                keep = stats and i >= n - self.cfg.actor_every
                self._stats.update(self.agent.update(self.buffer.sample(self.cfg.batch_size), stats=keep))

    def run(self, stop_event: threading.Event, on_weights: WeightsCallback, weights_every: int | None = None) -> None:
        """Update until `stop_event` is set: never beyond `update_budget()`, at most `max_updates_per_s`.

        Every `weights_every` updates (default `cfg.weights_every`) calls on_weights(updates, actor_state()) from
        this thread. Waits (without spinning) while the budget is used up.
        """
        every = weights_every or self.cfg.weights_every
        if every < 1:
            raise ValueError(f"Learner.run: weights_every must be >= 1, got {every}")
        interval = 1.0 / self.cfg.max_updates_per_s if self.cfg.max_updates_per_s > 0 else 0.0
        next_at = time.monotonic()
        while not stop_event.is_set():
            added = self.buffer.added
            if self.agent.updates >= self.update_budget(added):
                self.buffer.wait_for_more(added, timeout=0.05)
                continue
            if interval:
                now = time.monotonic()
                if now < next_at:
                    stop_event.wait(next_at - now)
                    continue
                next_at = max(next_at, now - interval) + interval
            actor_every = self.cfg.actor_every
            self.train(1, stats=(self.agent.updates + actor_every) % every < actor_every)  # before a snapshot
            if self.agent.updates % every == 0:
                on_weights(self.agent.updates, self.actor_state())

    def stats(self) -> dict[str, float]:
        """Counters and the latest kept losses (a host sync: call it to log, e.g. with each snapshot, not per step)."""
        out = {"updates": float(self.agent.updates), "buffer": float(len(self.buffer)),
               "added": float(self.buffer.added)}
        out.update({k: float(v) for k, v in self._stats.items()})
        return out

    # ------------------------------------------------------------------ actor weights (PolicyWeights payload)
    def architecture(self) -> str:
        """JSON of the actor's sizes, for PolicyWeights.architecture."""
        return json.dumps(self.agent.actor.architecture(), sort_keys=True)

    def actor_state(self) -> dict[str, np.ndarray]:
        """The actor's parameters as named float32 arrays (names and shapes: `Actor.shapes()`)."""
        with self._lock:
            return self.agent.actor.arrays()

    def load_actor_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Set actor and actor target from named arrays; ValueError naming the first wrong name or shape."""
        with self._lock:
            self.agent.actor.load_arrays(arrays)
            self.agent.actor_target.copy_from(self.agent.actor)

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, directory: str | os.PathLike[str]) -> Path:
        """Write a checkpoint under `directory` atomically and return its folder (older ones are removed)."""
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        with self._lock:
            name = f"ckpt_{self.agent.updates:010d}_{time.time_ns()}"
            tmp = root / f".{name}.tmp"
            tmp.mkdir()
            torch.save(self.agent.state_dict(), tmp / "learner.pt")
            self.buffer.save(tmp / "replay.npz")
            meta = {"config": self.cfg.to_dict(), "updates": self.agent.updates, "added": self.buffer.added}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        for f in tmp.iterdir():
            _fsync(f)
        _fsync(tmp)
        os.replace(tmp, root / name)
        _write_atomic(root / LATEST, name)
        for old in root.iterdir():
            if old.name != name and (old.name.startswith("ckpt_") or old.name.startswith(".ckpt_")):
                shutil.rmtree(old, ignore_errors=True)
        return root / name

    def load_checkpoint(self, directory: str | os.PathLike[str]) -> Path:
        """Restore agent, optimizers, counters, RNG and buffer from the newest checkpoint under `directory`."""
        root = Path(directory)
        try:
            folder = root / (root / LATEST).read_text().strip()
        except FileNotFoundError:
            raise FileNotFoundError(f"{root}: no checkpoint ({LATEST} missing)") from None
        meta = json.loads((folder / "meta.json").read_text())
        saved = meta["config"]
        for field in SHAPE_FIELDS:
            mine = getattr(self.cfg, field)
            theirs = tuple(saved[field]) if isinstance(mine, tuple) else saved[field]
            if theirs != mine:
                raise ValueError(f"{folder}: RLConfig.{field}={theirs!r} in the checkpoint, {mine!r} here")
        state = torch.load(folder / "learner.pt", map_location=self.device, weights_only=True)
        with self._lock:
            self.agent.load_state_dict(state)
            self.buffer.load(folder / "replay.npz")
            self._stats = {}
        return folder


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync(path.parent)
