"""Replay buffer of chunk transitions: preallocated, thread-safe, ring-overwriting, saved without pickle.

This module owns the stored row layout and the batches handed to the TD3 update. A transition is one float32 row
in normalized units (`rlt.rl.units`), laid out so that the networks' inputs are contiguous slices of it:

    [a (C·D) | x (S) | ã (C·D) | x' (S) | ã' (C·D) | r (C) | done | intervened]      S = Z + P

so the critic input [a, x], the actor input [x, ã] and the target actor input [x', ã'] need no copy.
Beside each row it keeps the row's key (episode_id, step) in an int64 array (-1, -1: unknown), so the learner can
tell which transitions a checkpoint holds. Writers (`add`, from a ROS callback thread) and the reader (`sample`,
the learner thread) share one lock. `save` writes one .npz (rows + keys + a JSON header) to a temporary file and
renames it into place; a file without keys (written before they were kept) loads with keys -1.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from rlt.rl.units import Units
from rlt.types import Transition, as_array

FORMAT = "rlt.replay/1"


@dataclasses.dataclass(frozen=True)
class RowLayout:
    """Column slices of a stored transition row."""

    state_dim: int  # S = Z + P
    chunk_len: int  # C
    action_dim: int  # D

    @property
    def chunk(self) -> int:
        return self.chunk_len * self.action_dim

    def _at(self, i: int, n: int) -> slice:
        return slice(i, i + n)

    @property
    def action(self) -> slice:
        return self._at(0, self.chunk)

    @property
    def state(self) -> slice:
        return self._at(self.chunk, self.state_dim)

    @property
    def reference(self) -> slice:
        return self._at(self.chunk + self.state_dim, self.chunk)

    @property
    def next_state(self) -> slice:
        return self._at(2 * self.chunk + self.state_dim, self.state_dim)

    @property
    def next_reference(self) -> slice:
        return self._at(2 * self.chunk + 2 * self.state_dim, self.chunk)

    @property
    def rewards(self) -> slice:
        return self._at(3 * self.chunk + 2 * self.state_dim, self.chunk_len)

    @property
    def done(self) -> int:
        return 3 * self.chunk + 2 * self.state_dim + self.chunk_len

    @property
    def intervened(self) -> int:
        return self.done + 1

    @property
    def width(self) -> int:
        return self.intervened + 1


@dataclasses.dataclass(frozen=True)
class ReplaySnapshot:
    """A consistent copy of a buffer's contents, taken under its lock, to be written to disk outside it."""

    header: str  # JSON of `ReplayBuffer._header()`
    rows: np.ndarray  # float32[size, W], storage order (not oldest first)
    keys: np.ndarray  # int64[size, 2], (episode_id, step) per row, storage order

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write to `path` (.npz) atomically: a crash leaves the previous file intact."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                np.savez(f, header=np.frombuffer(self.header.encode(), np.uint8), rows=self.rows, keys=self.keys)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


@dataclasses.dataclass(frozen=True)
class Batch:
    """Views into one float32[B, W] block of sampled rows (normalized units); valid until the next `sample`."""

    rows: Tensor  # float32[B, W]
    layout: RowLayout

    @property
    def size(self) -> int:
        return int(self.rows.shape[0])

    @property
    def state(self) -> Tensor:  # float32[B, S]
        return self.rows[:, self.layout.state]

    @property
    def action(self) -> Tensor:  # float32[B, C·D]
        return self.rows[:, self.layout.action]

    @property
    def reference(self) -> Tensor:  # float32[B, C·D]
        return self.rows[:, self.layout.reference]

    @property
    def rewards(self) -> Tensor:  # float32[B, C]
        return self.rows[:, self.layout.rewards]

    @property
    def done(self) -> Tensor:  # float32[B], 1.0 = terminal
        return self.rows[:, self.layout.done]

    @property
    def intervened(self) -> Tensor:  # float32[B], 1.0 = human chunk
        return self.rows[:, self.layout.intervened]

    @property
    def next_state(self) -> Tensor:  # float32[B, S]
        return self.rows[:, self.layout.next_state]

    @property
    def next_reference(self) -> Tensor:  # float32[B, C·D]
        return self.rows[:, self.layout.next_reference]

    @property
    def critic_input(self) -> Tensor:  # float32[B, C·D + S] = [a, x]
        return self.rows[:, : self.layout.chunk + self.layout.state_dim]

    def actor_input(self, use_reference: bool) -> Tensor:  # float32[B, S (+ C·D)] = [x, ã] or x
        lay = self.layout
        return self.rows[:, lay.chunk : lay.reference.stop] if use_reference else self.state

    def next_actor_input(self, use_reference: bool) -> Tensor:  # float32[B, S (+ C·D)] = [x', ã'] or x'
        lay = self.layout
        return self.rows[:, lay.next_state.start : lay.next_reference.stop] if use_reference else self.next_state


class ReplayBuffer:
    """Ring buffer of `capacity` chunk transitions stored as rows of a preallocated float32 tensor on `device`.

    `add` takes a `Transition` in physical units and stores it normalized by `units` (identity by default).
    `sample` draws uniformly with replacement. `added` counts every transition ever added (the UTD budget).
    """

    def __init__(
        self,
        capacity: int,
        token_dim: int,
        proprio_dim: int,
        chunk_len: int,
        action_dim: int,
        *,
        units: Units | None = None,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        if capacity < 1 or token_dim < 1 or proprio_dim < 0 or chunk_len < 1 or action_dim < 1:
            raise ValueError(f"ReplayBuffer: bad sizes capacity={capacity} token_dim={token_dim} "
                             f"proprio_dim={proprio_dim} chunk_len={chunk_len} action_dim={action_dim}")
        self.capacity, self.token_dim, self.proprio_dim = capacity, token_dim, proprio_dim
        self.chunk_len, self.action_dim = chunk_len, action_dim
        self.units = units or Units.identity(action_dim, proprio_dim)
        if self.units.action_scale.shape != (action_dim,) or self.units.proprio_scale.shape != (proprio_dim,):
            raise ValueError(f"ReplayBuffer.units: expected scales of shape ({action_dim},) and ({proprio_dim},), got "
                             f"{self.units.action_scale.shape} and {self.units.proprio_scale.shape}")
        self.layout = RowLayout(token_dim + proprio_dim, chunk_len, action_dim)
        self.device = torch.device(device)
        self._storage = torch.zeros(capacity, self.layout.width, device=self.device)  # float32[N, W]
        self._keys = np.full((capacity, 2), -1, np.int64)  # int64[N, 2]: (episode_id, step) of each row
        self._batches: dict[int, Tensor] = {}  # batch size -> preallocated float32[B, W]
        self._gen = torch.Generator(device=self.device).manual_seed(seed)
        self._cond = threading.Condition()
        self._size = 0  # rows holding data
        self._cursor = 0  # next row to write
        self._added = 0  # transitions ever added

    # ------------------------------------------------------------------ writing
    def pack(self, t: Transition) -> np.ndarray:
        """A physical-unit transition -> its normalized float32[W] row; raises ValueError naming a bad field."""
        z, p, c, d = self.token_dim, self.proprio_dim, self.chunk_len, self.action_dim
        u, lay = self.units, self.layout
        row = np.empty(lay.width, np.float32)
        row[lay.action] = u.action_to_norm(as_array("Transition.action", t.action, 2, (c, d))).ravel()
        row[lay.reference] = u.action_to_norm(as_array("Transition.reference", t.reference, 2, (c, d))).ravel()
        row[lay.next_reference] = u.action_to_norm(
            as_array("Transition.next_reference", t.next_reference, 2, (c, d))).ravel()
        for cols, token, proprio, prefix in (
            (lay.state, t.rl_token, t.proprio, ""),
            (lay.next_state, t.next_rl_token, t.next_proprio, "next_"),
        ):
            row[cols.start : cols.start + z] = as_array(f"Transition.{prefix}rl_token", token, 1, (z,))
            row[cols.start + z : cols.stop] = u.proprio_to_norm(
                as_array(f"Transition.{prefix}proprio", proprio, 1, (p,)))
        row[lay.rewards] = as_array("Transition.rewards", t.rewards, 1, (c,))
        row[lay.done] = float(t.done)
        row[lay.intervened] = float(t.intervened)
        return row

    def add(self, t: Transition) -> None:
        self.add_row(self.pack(t), (t.episode_id, t.step))

    def add_row(self, row: np.ndarray, key: tuple[int, int] = (-1, -1)) -> None:
        """Append one row from `pack` (float32[W]) with its key (episode_id, step)."""
        row = torch.from_numpy(row).to(self.device)
        with self._cond:
            self._storage[self._cursor].copy_(row)
            self._keys[self._cursor] = key
            self._cursor = (self._cursor + 1) % self.capacity
            self._size = min(self._size + 1, self.capacity)
            self._added += 1
            self._cond.notify_all()

    def add_rows(self, rows: np.ndarray | Tensor, keys: np.ndarray | None = None) -> None:
        """Append already normalized rows float32[N, W] (e.g. from `rows()` of another buffer), oldest first.

        keys: int64[N, 2] (episode_id, step) per row (e.g. from `keys()`); None: unknown (-1).
        """
        rows = torch.as_tensor(rows, dtype=torch.float32, device=self.device)
        if rows.dim() != 2 or rows.shape[1] != self.layout.width:
            raise ValueError(f"ReplayBuffer.add_rows: expected float32[N, {self.layout.width}], got {list(rows.shape)}")
        keys = np.full((len(rows), 2), -1, np.int64) if keys is None else np.asarray(keys, np.int64)
        if keys.shape != (len(rows), 2):
            raise ValueError(f"ReplayBuffer.add_rows: expected int64[{len(rows)}, 2] keys, got {list(keys.shape)}")
        skip = max(0, len(rows) - self.capacity)  # rows that would be overwritten within this call
        with self._cond:
            self._cursor = (self._cursor + skip) % self.capacity
            done = skip
            while done < len(rows):  # at most two slices: up to the end of the ring, then from its start
                n = min(len(rows) - done, self.capacity - self._cursor)
                self._storage[self._cursor : self._cursor + n].copy_(rows[done : done + n])
                self._keys[self._cursor : self._cursor + n] = keys[done : done + n]
                self._cursor = (self._cursor + n) % self.capacity
                self._size = min(self._size + n, self.capacity)
                done += n
            self._added += len(rows)
            self._cond.notify_all()

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return self._size

    @property
    def added(self) -> int:
        """Transitions added since creation (including loaded ones and overwritten ones)."""
        return self._added

    def wait_for_more(self, added: int, timeout: float) -> bool:
        """Block until more than `added` transitions were added or `timeout` s passed; True if there are more."""
        with self._cond:
            return self._cond.wait_for(lambda: self._added > added, timeout)

    def sample(self, batch_size: int) -> Batch:
        """`batch_size` rows drawn uniformly with replacement, into a buffer reused by the next call."""
        rows = self._batches.get(batch_size)
        if rows is None:
            rows = self._batches[batch_size] = torch.empty(batch_size, self.layout.width, device=self.device)
        with self._cond:
            if self._size == 0:
                raise RuntimeError("ReplayBuffer.sample: the buffer is empty")
            idx = torch.randint(self._size, (batch_size,), generator=self._gen, device=self.device)
            torch.index_select(self._storage, 0, idx, out=rows)
        return Batch(rows, self.layout)

    def rows(self) -> np.ndarray:
        """A copy of the stored rows, oldest first: float32[len, W] (normalized units)."""
        with self._cond:
            data = self._storage[: self._size].cpu().numpy()
            start = self._cursor if self._size == self.capacity else 0
            return np.roll(data, -start, axis=0)

    def keys(self) -> np.ndarray:
        """(episode_id, step) of the stored rows, oldest first like `rows()`: int64[len, 2]; -1 where unknown."""
        with self._cond:
            start = self._cursor if self._size == self.capacity else 0
            return np.roll(self._keys[: self._size], -start, axis=0)

    # ------------------------------------------------------------------ persistence
    def _header(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "capacity": self.capacity,
            "token_dim": self.token_dim,
            "proprio_dim": self.proprio_dim,
            "chunk_len": self.chunk_len,
            "action_dim": self.action_dim,
            "units": self.units.to_json(),
            "size": self._size,
            "cursor": self._cursor,
            "added": self._added,
            "generator": self._gen.get_state().tolist(),
        }

    def snapshot(self) -> ReplaySnapshot:
        """A copy of header, rows and keys taken under the lock (writers may go on while it is written)."""
        with self._cond:
            return ReplaySnapshot(
                json.dumps(self._header()),
                self._storage[: self._size].to("cpu", copy=True).numpy(),
                self._keys[: self._size].copy(),
            )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write rows + keys + header to `path` (.npz) atomically: a crash leaves the previous file intact."""
        self.snapshot().write(path)

    def load(self, path: str | os.PathLike[str]) -> None:
        """Replace the contents with a file written by `save`; sizes and units must match this buffer."""
        with np.load(path, allow_pickle=False) as f:
            header = json.loads(f["header"].tobytes().decode())
            data = np.asarray(f["rows"], dtype=np.float32)
            keys = np.asarray(f["keys"], np.int64) if "keys" in f.files else np.full((len(data), 2), -1, np.int64)
        if header.get("format") != FORMAT:
            raise ValueError(f"{path}: not a replay buffer file (format {header.get('format')!r}, expected {FORMAT})")
        mine = self._header()
        for key in ("token_dim", "proprio_dim", "chunk_len", "action_dim", "units"):
            if header[key] != mine[key]:
                raise ValueError(f"{path}: {key}={header[key]} does not match this buffer's {mine[key]}")
        if data.shape != (header["size"], self.layout.width):
            raise ValueError(f"{path}: rows have shape {data.shape}, expected ({header['size']}, {self.layout.width})")
        if keys.shape != (len(data), 2):
            raise ValueError(f"{path}: keys have shape {keys.shape}, expected ({len(data)}, 2)")
        if header["capacity"] != self.capacity:  # keep the newest rows, oldest first from row 0
            if header["size"] == header["capacity"]:
                data = np.roll(data, -header["cursor"], axis=0)
                keys = np.roll(keys, -header["cursor"], axis=0)
            data, keys = data[-self.capacity :], keys[-self.capacity :]
            header.update(size=len(data), cursor=len(data) % self.capacity)
        with self._cond:
            self._storage.zero_()
            self._storage[: len(data)].copy_(torch.from_numpy(data))
            self._keys.fill(-1)
            self._keys[: len(keys)] = keys
            self._size, self._cursor, self._added = header["size"], header["cursor"], header["added"]
            self._gen.set_state(torch.tensor(header["generator"], dtype=torch.uint8))
            self._cond.notify_all()
