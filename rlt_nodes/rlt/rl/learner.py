"""`Learner`: the online training loop around the TD3 agent and its replay buffer, plus checkpoints.

This module owns the update schedule against data arrival (UTD budget, learning start, rate cap), the actor
snapshots handed to the caller for publishing, the weights version numbers, the per-episode high-water marks
(per actor stream) that drop re-delivered transitions, and atomic checkpoints plus the journal between them. The
learner node feeds `add` from its subscription callback and runs `run` in a plain thread; nothing here knows about
ROS.

Checkpoint layout (`save_checkpoint(dir)`): `dir/ckpt_<updates>_<ns>/{learner.pt, replay.npz, meta.json}` plus
`dir/LATEST` naming the newest one. A checkpoint is written into a hidden temporary directory, renamed into place,
and only then published by atomically replacing LATEST, so a SIGKILL at any moment leaves the previous checkpoint
loadable. `learner.pt` holds tensors and plain containers only and is read with `torch.load(weights_only=True)`.

Journal (`rlt.rl.journal`, opened by `resume(dir)`): every stored transition and every handed-out weights version
is appended to `dir/journal_<N>.bin` before it takes effect. `save_checkpoint` rotates to a new segment N under
the lock that `add` takes, so the checkpoint holds exactly the records of the segments < N; its meta.json names N,
and the segments < N are deleted only after LATEST names the new checkpoint. `resume` loads LATEST and replays the
segments >= its N: after a SIGKILL at any moment every transition `add` accepted is back, once.
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

from rlt.rl import journal
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
        self._data_lock = threading.Lock()  # buffer + journal + marks + version: add vs the checkpoint snapshot
        self._stats: dict[str, Tensor] = {}
        self._marks: dict[tuple[int, int], int] = {}  # (stream_id, episode_id) -> highest step stored
        self._dedup = False  # drop transitions at or below their episode's mark (on from `resume`)
        self._journal: journal.Journal | None = None
        self._journal_dir: Path | None = None  # where `resume` journals (checkpoints elsewhere ignore the journal)
        self._closed_segment = 0  # after `close`: the first segment number no record was written to
        self._weights_version = 0  # the highest version `next_weights_version` returned
        self.duplicates = 0  # transitions `add` dropped as re-delivered

    # ------------------------------------------------------------------ data and updates
    def add(self, t: Transition) -> bool:
        """Store one transition (physical units, as on the wire); callable from any thread.

        After `resume`, a transition whose step is <= the highest step stored for its episode (of its actor stream)
        is a re-delivery: it is dropped (counted in `duplicates`) and False returned. Otherwise it is appended to the
        journal (if one is open) before it enters the buffer, and True returned. ValueError (nothing stored) on wrong
        sizes.
        """
        return self._add(t, self._journal)

    def _add(self, t: Transition, log: journal.Journal | None) -> bool:
        episode, step = (int(t.stream_id), int(t.episode_id)), int(t.step)
        with self._data_lock:
            mark = self._marks.get(episode)
            if self._dedup and mark is not None and step <= mark:
                self.duplicates += 1
                return False
            row = self.buffer.pack(t)  # validates the sizes before anything is journaled
            if log is not None:
                log.append_transition(t)
            self.buffer.add_row(row, (episode[1], step))
            if mark is None or step > mark:
                self._marks[episode] = step
        return True

    def next_weights_version(self) -> int:
        """The version for the next published actor snapshot: 1, 2, ..., continuing after `resume`.

        Journaled before it is returned, so a restart never hands out a version number twice.
        """
        with self._data_lock:
            version = self._weights_version + 1
            if self._journal is not None:
                self._journal.append_version(version)
            self._weights_version = version
        return version

    def start_versions_after(self, version: int) -> None:
        """Number the next snapshots after `version` at least (a learner without a journal: see the node)."""
        with self._data_lock:
            self._weights_version = max(self._weights_version, int(version))

    @property
    def weights_version(self) -> int:
        """The highest version `next_weights_version` returned (0: none yet)."""
        return self._weights_version

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
        """Write a checkpoint under `directory` atomically and return its folder (older ones are removed).

        With a journal open: rotates it to a new segment N together with the buffer snapshot (under the lock `add`
        takes), records N in meta.json and deletes the segments < N once LATEST names the new checkpoint.
        """
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        with self._lock:
            name = f"ckpt_{self.agent.updates:010d}_{time.time_ns()}"
            tmp = root / f".{name}.tmp"
            tmp.mkdir()
            with self._data_lock:  # the journal's cut and the buffer's snapshot: one instant as `add` sees it
                mine = self._journal_dir is not None and root.resolve() == self._journal_dir
                if mine and self._journal is not None:
                    segment = self._journal.rotate()
                else:  # 0 (resume would replay every segment) unless this learner's journal here is closed
                    segment = self._closed_segment if mine else 0
                replay = self.buffer.snapshot()
                added = self.buffer.added
                marks = {f"{stream}:{episode}": v for (stream, episode), v in self._marks.items()}
                version = self._weights_version
            torch.save(self.agent.state_dict(), tmp / "learner.pt")
            replay.write(tmp / "replay.npz")
            meta = {"config": self.cfg.to_dict(), "updates": self.agent.updates, "added": added,
                    "journal_segment": segment, "weights_version": version, "marks": marks}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        for f in tmp.iterdir():
            journal.fsync_path(f)
        journal.fsync_path(tmp)
        os.replace(tmp, root / name)
        _write_atomic(root / LATEST, name)
        for old in root.iterdir():
            if old.name != name and (old.name.startswith("ckpt_") or old.name.startswith(".ckpt_")):
                shutil.rmtree(old, ignore_errors=True)
        if mine:
            journal.prune(root, segment)
        return root / name

    def load_checkpoint(self, directory: str | os.PathLike[str]) -> Path:
        """Restore agent, optimizers, counters, RNG, buffer, high-water marks and weights version from the newest
        checkpoint under `directory` (replaying the journal is `resume`'s)."""
        return self._load_checkpoint(directory)[0]

    def _load_checkpoint(self, directory: str | os.PathLike[str]) -> tuple[Path, dict]:
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
        with self._lock, self._data_lock:
            self.agent.load_state_dict(state)
            self.buffer.load(folder / "replay.npz")
            self._stats = {}
            if "marks" in meta:  # "stream:episode" -> step
                self._marks = {(int(k.split(":")[0]), int(k.split(":")[1])): int(v) for k, v in meta["marks"].items()}
            else:  # a checkpoint from before marks were kept: the buffer's keys (all -1 in an older replay.npz)
                self._marks = {}
                for episode, step in self.buffer.keys().tolist():
                    if episode >= 0 and step > self._marks.get((0, episode), -1):
                        self._marks[(0, episode)] = step
            self._weights_version = int(meta.get("weights_version", 0))
        return folder, meta

    def resume(self, directory: str | os.PathLike[str]) -> str:
        """Restore everything received before a stop or crash, start journaling, and say what was restored.

        Loads the newest checkpoint under `directory` (if any), replays the journal segments from the one it names
        (all of them without a checkpoint) through `add`'s duplicate check, continues the weights versions after
        the highest one journaled, deletes segments the checkpoint covers and opens a fresh segment for appending.
        Turns duplicate dropping on. Returns a one-line summary. ValueError if the checkpoint or a journaled
        transition does not fit this learner's sizes; torn or corrupt journal records are dropped and reported.
        """
        if self._journal_dir is not None:
            raise RuntimeError(f"Learner.resume: resumed from {self._journal_dir} already (resume once, before adding)")
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        first = 0
        if (root / LATEST).is_file():
            folder, meta = self._load_checkpoint(root)
            first = int(meta.get("journal_segment", 0))
            head = f"checkpoint {folder.name} ({self.updates} updates, {len(self.buffer)} transitions)"
        else:
            head = "no checkpoint"
        self._dedup = True
        reader = journal.JournalReader(root, first)
        replayed = skipped = 0
        for record in reader:
            if record.transition is not None:
                try:
                    stored = self._add(record.transition, None)
                except ValueError as exc:
                    raise ValueError(f"{journal.segment_path(root, record.segment)} at byte {record.offset}: "
                                     f"a journaled transition does not fit this learner: {exc}") from None
                replayed += stored
                skipped += not stored
            elif record.version is not None:
                self._weights_version = max(self._weights_version, record.version)
        parts = [f"{head} + {replayed} journaled transitions"]
        if skipped:
            parts.append(f"{skipped} journaled duplicates skipped")
        if reader.torn:
            n = len(reader.torn)
            parts.append(f"{n} torn record{'s' * (n > 1)} dropped (" + "; ".join(map(str, reader.torn)) + ")")
        parts.append(f"weights continue after v{self._weights_version}")
        journal.prune(root, first)
        present = [number for number, _ in journal.segments(root)]
        self._journal = journal.Journal(root, max([first, *(number + 1 for number in present)]))
        self._journal_dir = root.resolve()
        return ", ".join(parts) + f", journaling to {journal.segment_path(root, self._journal.segment).name}"

    def close(self) -> None:
        """fsync and close the journal (after the final `save_checkpoint`); `add` goes on without journaling."""
        with self._data_lock:
            if self._journal is not None:
                self._journal.close()
                self._closed_segment = self._journal.segment + 1
                self._journal = None


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    journal.fsync_path(path.parent)
