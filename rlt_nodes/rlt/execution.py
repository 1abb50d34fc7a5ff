"""The driver side of the chunk protocol, written once for every backend (lockstep MuJoCo, ros2_control).

A driver executes action chunks row by row and asks the policy side for them. This module owns the rules both
drivers follow, free of ROS and of any simulator or arm:
- episodes: numbering, the approach and critical phases, the canonical `EpisodeEvent`s (START, HANDOFF, ...);
- requests: a `ChunkRequest` reports the rows executed since the previous one (their sources and rewards) and,
  when `need_chunk`, opens the one request a chunk may answer; in the critical phase an observation-only request
  every `observe_stride` steps gives the actor its stride samples;
- chunks: only the answer to the open request (same stamp), on the driver's axes, non-empty and finite, is
  accepted, truncated to C rows; anything else raises `ChunkRejected` naming why.
`Chunking` holds the values every node must agree on; they are read from the RL config (`rl.chunk_len`,
`rl.stride`), the one place they are declared. The backends (`rlt.sim.driver.SimDriver`,
`rlt.robot.executor.ChunkExecutor`) own only what differs: stepping MuJoCo vs timing, safety and the controller.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from rlt.types import ActionChunk, ChunkRequest, EpisodeEvent, Event, Phase, Source, Terminal

if TYPE_CHECKING:
    from rlt.rl.config import RLConfig

MODES: tuple[str, ...] = ("full", "critical")  # episode start: the base VLA approaches first, or near the hole


class ChunkRejected(ValueError):
    """A chunk the driver will not run; the message says why."""


@dataclasses.dataclass(frozen=True)
class Chunking:
    """What driver, actor, learner and teleop must agree on; built from the RL config by `of` (no defaults here:
    they are RLConfig's)."""

    chunk_len: int  # C: rows of a chunk that are executed; longer chunks are truncated
    observe_stride: int  # critical phase: an observation every this many steps (0 = chunk boundaries only)

    def __post_init__(self) -> None:
        if self.chunk_len < 1:
            raise ValueError(f"Chunking.chunk_len={self.chunk_len}: must be >= 1")
        if self.observe_stride < 0 or (self.observe_stride and self.chunk_len % self.observe_stride):
            raise ValueError(f"Chunking.observe_stride={self.observe_stride}: must be 0 or divide "
                             f"chunk_len={self.chunk_len}")

    @classmethod
    def default(cls) -> Chunking:
        """The chunking of the RLConfig defaults."""
        from rlt.rl.config import RLConfig

        return cls.of(RLConfig())

    @classmethod
    def of(cls, rl: RLConfig) -> Chunking:
        """C = rl.chunk_len; an observation at each start of the learner's stride windows (none between chunk
        boundaries when the stride is C)."""
        return cls(rl.chunk_len, 0 if rl.stride == rl.chunk_len else rl.stride)


class ChunkProtocol:
    """Episode, request and chunk bookkeeping of one driver (see the module docstring).

    `axis_names` are the action columns requests report; `accepted_axes` every axis list a chunk may use (a robot
    also takes joint-space chunks). Stamps are passed in (ns), so a backend keeps its own clock.
    """

    def __init__(self, chunking: Chunking, mode: str, axis_names: Sequence[str],
                 accepted_axes: Sequence[Sequence[str]] = ()) -> None:
        if mode not in MODES:
            raise ValueError(f"mode={mode!r}: expected one of {', '.join(MODES)}")
        self.chunking, self.mode = chunking, mode
        self.axis_names = tuple(axis_names)
        self.accepted_axes = tuple(tuple(a) for a in accepted_axes) or (self.axis_names,)
        self.episode_id = -1
        self.running = False
        self.phase = Phase.APPROACH
        self.step = 0  # control steps executed in the episode
        self.handoff_step = 0  # the step the critical phase began at
        self.pending: ChunkRequest | None = None  # the need_chunk request a chunk must answer
        self._executed: list[np.ndarray] = []  # rows executed since the previous request, float32[D] each
        self._sources: list[Source] = []
        self._rewards: list[float] = []

    # ------------------------------------------------------------------ episodes
    def begin(self, stamp_ns: int, detail: str = "", handoff: bool = True) -> list[EpisodeEvent]:
        """Start the next episode: START, and HANDOFF at once in mode "critical" (unless `handoff` is False)."""
        self.episode_id += 1
        self.running, self.phase, self.step, self.handoff_step = True, Phase.APPROACH, 0, 0
        self.pending = None
        self._executed, self._sources, self._rewards = [], [], []
        events = [self.event(Event.START, stamp_ns, detail)]
        if self.mode == "critical" and handoff:
            events.append(self.enter_critical(stamp_ns))
        return events

    def enter_critical(self, stamp_ns: int) -> EpisodeEvent:
        self.phase, self.handoff_step = Phase.CRITICAL, self.step
        return self.event(Event.HANDOFF, stamp_ns)

    def end(self, stamp_ns: int, terminal: Terminal, event: Event, detail: str) -> tuple[EpisodeEvent, ChunkRequest]:
        """End the episode: the outcome's event and the terminal report of the rows since the last request. A
        success earns reward 1 on the last executed row."""
        if terminal is Terminal.SUCCESS and self._rewards:
            self._rewards[-1] = 1.0
        self.running, self.pending = False, None
        ev = self.event(event, stamp_ns, detail)
        return ev, self.request(stamp_ns, need_chunk=False, terminal=terminal)

    def event(self, event: Event, stamp_ns: int, detail: str = "") -> EpisodeEvent:
        return EpisodeEvent(event, max(self.episode_id, 0), self.step, detail, stamp_ns)

    # ------------------------------------------------------------------ rows and requests
    def record(self, executed: np.ndarray, source: Source, reward: float = 0.0) -> None:
        """One executed row (float32[D], as executed, in `axis_names`), who chose it and its reward."""
        self._executed.append(np.asarray(executed, np.float32))
        self._sources.append(source)
        self._rewards.append(float(reward))
        self.step += 1

    @property
    def unreported(self) -> int:
        """Rows executed since the previous request."""
        return len(self._executed)

    def request(self, stamp_ns: int, need_chunk: bool, terminal: Terminal = Terminal.NONE) -> ChunkRequest:
        """Report the rows since the previous request; with `need_chunk` this request is the one to answer."""
        request = ChunkRequest(
            episode_id=self.episode_id,
            step=self.step,
            axis_names=self.axis_names,
            phase=self.phase,
            need_chunk=need_chunk,
            terminal=terminal,
            executed=np.array(self._executed, np.float32).reshape(-1, len(self.axis_names)),
            sources=tuple(self._sources),
            rewards=np.array(self._rewards, np.float32),
            stamp_ns=stamp_ns,
        )
        self._executed, self._sources, self._rewards = [], [], []
        if need_chunk:
            self.pending = request
        return request

    def observation_due(self) -> bool:
        """In the critical phase, every `observe_stride` steps after the handoff."""
        stride = self.chunking.observe_stride
        return self.phase is Phase.CRITICAL and bool(stride) and (self.step - self.handoff_step) % stride == 0

    # ------------------------------------------------------------------ chunks
    def accept(self, chunk: ActionChunk) -> np.ndarray:
        """The rows (float[min(C, rows), D]) of `chunk` if it answers the open request; closes it. Else raises
        ChunkRejected (the request stays open)."""
        self.check(chunk)
        self.pending = None
        return np.asarray(chunk.data)[: self.chunking.chunk_len]

    def check(self, chunk: ActionChunk) -> None:
        what = f"chunk {chunk.chunk_id} (stamp {chunk.stamp_ns})"
        if not self.running:
            raise ChunkRejected(f"{what}: no episode is running")
        if self.pending is None:
            raise ChunkRejected(f"{what}: no chunk is awaited (duplicate or unsolicited; episode {self.episode_id})")
        if chunk.stamp_ns != self.pending.stamp_ns:
            older = "an older" if chunk.stamp_ns < self.pending.stamp_ns else "an unknown"
            raise ChunkRejected(f"{what}: answers {older} request, not the pending one (episode {self.episode_id}, "
                                f"step {self.pending.step}, stamp {self.pending.stamp_ns})")
        axes = tuple(chunk.axis_names)
        if axes not in self.accepted_axes:
            raise ChunkRejected(f"{what}: axis_names {axes}, expected {' or '.join(map(str, self.accepted_axes))}")
        data = np.asarray(chunk.data)
        if data.ndim != 2 or data.shape[0] == 0 or data.shape[1] != len(axes):
            raise ChunkRejected(f"{what}: data shape {data.shape}, expected [C >= 1, {len(axes)}]")
        if not np.isfinite(data).all():
            raise ChunkRejected(f"{what}: non-finite values")


class ProtocolDriver:
    """Base of a driver backend: the episode state every driver exposes, read from its `protocol`."""

    protocol: ChunkProtocol

    @property
    def episode_id(self) -> int:
        return self.protocol.episode_id

    @property
    def running(self) -> bool:
        """An episode is running."""
        return self.protocol.running

    @property
    def phase(self) -> Phase:
        return self.protocol.phase
