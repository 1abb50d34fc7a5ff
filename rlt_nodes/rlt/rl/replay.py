"""Replay buffer of chunk transitions: preallocated, thread-safe, ring-overwriting, saved without pickle.

This module owns the stored row layout and the batches handed to the TD3 update. A transition is one float32 row
in normalized units (`rlt.rl.units`), laid out so that the networks' inputs are contiguous slices of it:

    [a (C·D) | x (S) | ã (C·D) | x' (S) | ã' (C·D) | r (C) | done | intervened]      S = Z + P

so the critic input [a, x], the actor input [x, ã] and the target actor input [x', ã'] need no copy.
Writers (`add`, from a ROS callback thread) and the reader (`sample`, the learner thread) share one lock.
`save` writes one .npz (rows + a JSON header) to a temporary file and renames it into place.
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
        row = torch.from_numpy(self.pack(t)).to(self.device)
        with self._cond:
            self._storage[self._cursor].copy_(row)
            self._cursor = (self._cursor + 1) % self.capacity
            self._size = min(self._size + 1, self.capacity)
            self._added += 1
            self._cond.notify_all()

    def add_rows(self, rows: np.ndarray | Tensor) -> None:
        """Append already normalized rows float32[N, W] (e.g. from `rows()` of another buffer), oldest first."""
        rows = torch.as_tensor(rows, dtype=torch.float32, device=self.device)
        if rows.dim() != 2 or rows.shape[1] != self.layout.width:
            raise ValueError(f"ReplayBuffer.add_rows: expected float32[N, {self.layout.width}], got {list(rows.shape)}")
        skip = max(0, len(rows) - self.capacity)  # rows that would be overwritten within this call
        with self._cond:
            self._cursor = (self._cursor + skip) % self.capacity
            done = skip
            while done < len(rows):  # at most two slices: up to the end of the ring, then from its start
                n = min(len(rows) - done, self.capacity - self._cursor)
                self._storage[self._cursor : self._cursor + n].copy_(rows[done : done + n])
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

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write rows + header to `path` (.npz) atomically: a crash leaves the previous file intact."""
        path = Path(path)
        with self._cond:
            header = json.dumps(self._header())
            data = self._storage[: self._size].to("cpu", copy=True).numpy()  # a snapshot: writers may go on
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                np.savez(f, header=np.frombuffer(header.encode(), np.uint8), rows=data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def load(self, path: str | os.PathLike[str]) -> None:
        """Replace the contents with a file written by `save`; sizes and units must match this buffer."""
        with np.load(path, allow_pickle=False) as f:
            header = json.loads(f["header"].tobytes().decode())
            data = np.asarray(f["rows"], dtype=np.float32)
        if header.get("format") != FORMAT:
            raise ValueError(f"{path}: not a replay buffer file (format {header.get('format')!r}, expected {FORMAT})")
        mine = self._header()
        for key in ("token_dim", "proprio_dim", "chunk_len", "action_dim", "units"):
            if header[key] != mine[key]:
                raise ValueError(f"{path}: {key}={header[key]} does not match this buffer's {mine[key]}")
        if data.shape != (header["size"], self.layout.width):
            raise ValueError(f"{path}: rows have shape {data.shape}, expected ({header['size']}, {self.layout.width})")
        if header["capacity"] != self.capacity:  # keep the newest rows, oldest first from row 0
            if header["size"] == header["capacity"]:
                data = np.roll(data, -header["cursor"], axis=0)
            data = data[-self.capacity :]
            header.update(size=len(data), cursor=len(data) % self.capacity)
        with self._cond:
            self._storage.zero_()
            self._storage[: len(data)].copy_(torch.from_numpy(data))
            self._size, self._cursor, self._added = header["size"], header["cursor"], header["added"]
            self._gen.set_state(torch.tensor(header["generator"], dtype=torch.uint8))
            self._cond.notify_all()
