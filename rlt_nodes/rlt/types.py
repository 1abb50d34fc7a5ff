"""Plain data types exchanged between the core and the ROS layer, field for field like the rlt_msgs messages.

`rlt_nodes.convert` is the only place that turns these into messages and back. Arrays are numpy, validated on
construction: wrong shapes, dtypes or non-finite values raise `ValueError` naming the field.
"""

from __future__ import annotations

import dataclasses
import enum

import numpy as np


class Source(enum.IntEnum):
    """Producer of an action chunk (ActionChunk.SOURCE_*)."""

    VLA = 0
    ACTOR = 1
    HUMAN = 2


class Event(enum.IntEnum):
    """Episode life-cycle events (EpisodeEvent constants)."""

    START = 0
    HANDOFF = 1
    SUCCESS = 2
    FAILURE = 3
    TIMEOUT = 4
    RESET = 5
    INTERVENE_BEGIN = 6
    INTERVENE_END = 7


def as_array(name: str, value: object, ndim: int, shape: tuple[int | None, ...] | None = None) -> np.ndarray:
    """float32 view/copy of `value` with `ndim` dims (and `shape`, None = any), all finite; else ValueError."""
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim}-D array, got shape {arr.shape}")
    if shape is not None and any(s is not None and s != a for s, a in zip(shape, arr.shape, strict=True)):
        want = "x".join("?" if s is None else str(s) for s in shape)
        raise ValueError(f"{name}: expected shape {want}, got {'x'.join(map(str, arr.shape))}")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0].tolist()
        raise ValueError(f"{name}: non-finite value {arr[tuple(bad)]} at index {bad}")
    return arr


@dataclasses.dataclass
class ActionChunk:
    """C consecutive delta actions. data: float32[C, D], columns named by axis_names."""

    data: np.ndarray  # float32[C, D]
    axis_names: tuple[str, ...]
    source: Source = Source.ACTOR
    chunk_id: int = 0
    stamp_ns: int = 0
    frame_id: str = ""
    policy_version: int = -1  # actor weights version that produced it; -1: none (VLA, human, untrained actor)
    vla_ns: int = 0  # when the VLA pass it came from finished (ns, clock of stamp_ns); 0: no VLA stage (human)
    sent_ns: int = 0  # when its producer published it (ns); 0: not yet

    def __post_init__(self) -> None:
        self.axis_names = tuple(self.axis_names)
        self.data = as_array("ActionChunk.data", self.data, 2, (None, len(self.axis_names)))
        self.source = Source(self.source)
        if self.chunk_id < 0:
            raise ValueError(f"ActionChunk.chunk_id: must be >= 0, got {self.chunk_id}")

    @property
    def chunk_len(self) -> int:
        return int(self.data.shape[0])


class Phase(enum.IntEnum):
    """Who drives (ChunkRequest.PHASE_*)."""

    APPROACH = 0
    CRITICAL = 1


class Terminal(enum.IntEnum):
    """How an episode ends at a request step (ChunkRequest.TERMINAL_*)."""

    NONE = 0
    SUCCESS = 1
    FAILURE = 2
    TIMEOUT = 3


@dataclasses.dataclass
class ChunkRequest:
    """The driver's report of steps executed since its last request, and its request for a VLA pass (+ chunk).

    executed: float32[n, D] rows actually executed (oldest first), sources: Source per row, rewards: float32[n].
    """

    episode_id: int
    step: int
    axis_names: tuple[str, ...]
    phase: Phase = Phase.APPROACH
    need_chunk: bool = True
    terminal: Terminal = Terminal.NONE
    executed: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0), np.float32))
    sources: tuple[Source, ...] = ()
    rewards: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.float32))
    stamp_ns: int = 0

    def __post_init__(self) -> None:
        self.axis_names = tuple(self.axis_names)
        d = len(self.axis_names)
        self.executed = as_array("ChunkRequest.executed", np.reshape(self.executed, (-1, d)), 2, (None, d))
        n = self.executed.shape[0]
        self.rewards = as_array("ChunkRequest.rewards", self.rewards, 1, (n,))
        if len(self.sources) != n:
            raise ValueError(
                f"ChunkRequest.sources: expected {n} entries (one per executed row), got {len(self.sources)}"
            )
        self.sources = tuple(Source(s) for s in self.sources)
        self.phase, self.terminal = Phase(self.phase), Terminal(self.terminal)
        self.need_chunk = bool(self.need_chunk)


@dataclasses.dataclass
class VlaOutput:
    """One VLA forward pass answering `request`: reference chunk ã[H, D], RL token z_rl[Z], the proprio[P] used."""

    request: ChunkRequest
    reference: ActionChunk
    rl_token: np.ndarray  # float32[Z]
    proprio: np.ndarray  # float32[P]
    model_id: str = ""
    stamp_ns: int = 0

    def __post_init__(self) -> None:
        self.rl_token = as_array("VlaOutput.rl_token", self.rl_token, 1)
        self.proprio = as_array("VlaOutput.proprio", self.proprio, 1)


@dataclasses.dataclass
class SimState:
    """Kinematic state to render the sim scene: qpos float64[nq], mocap float64[7 * nmocap], params float64[k]."""

    episode_id: int
    step: int
    qpos: np.ndarray
    mocap: np.ndarray
    params: np.ndarray
    stamp_ns: int = 0

    def __post_init__(self) -> None:
        for name in ("qpos", "mocap", "params"):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.ndim != 1 or not np.isfinite(arr).all():
                raise ValueError(f"SimState.{name}: expected a finite 1-D array, got shape {arr.shape}")
            setattr(self, name, arr)


@dataclasses.dataclass
class Transition:
    """One replay sample ⟨x, a, ã, r, done, intervened, x', ã'⟩; chunks float32[C, D] in physical units."""

    rl_token: np.ndarray  # float32[Z]
    proprio: np.ndarray  # float32[P]
    action: np.ndarray  # float32[C, D]
    reference: np.ndarray  # float32[C, D]
    rewards: np.ndarray  # float32[C]
    done: bool
    intervened: bool
    next_rl_token: np.ndarray  # float32[Z]
    next_proprio: np.ndarray  # float32[P]
    next_reference: np.ndarray  # float32[C, D]
    episode_id: int = 0
    step: int = 0
    stamp_ns: int = 0
    # the actor process that sent it (a number fixed at its start): (stream_id, episode_id, step) names a transition
    # uniquely, also across driver restarts that number episodes from 0 again, so a re-delivery is recognised
    stream_id: int = 0

    def __post_init__(self) -> None:
        self.rl_token = as_array("Transition.rl_token", self.rl_token, 1)
        z = self.rl_token.shape[0]
        self.proprio = as_array("Transition.proprio", self.proprio, 1)
        p = self.proprio.shape[0]
        self.action = as_array("Transition.action", self.action, 2)
        c, d = self.action.shape
        self.reference = as_array("Transition.reference", self.reference, 2, (c, d))
        self.rewards = as_array("Transition.rewards", self.rewards, 1, (c,))
        self.next_rl_token = as_array("Transition.next_rl_token", self.next_rl_token, 1, (z,))
        self.next_proprio = as_array("Transition.next_proprio", self.next_proprio, 1, (p,))
        self.next_reference = as_array("Transition.next_reference", self.next_reference, 2, (c, d))
        self.done, self.intervened = bool(self.done), bool(self.intervened)


@dataclasses.dataclass
class PolicyWeights:
    """A versioned actor snapshot: named float32 tensors plus the architecture (JSON) they belong to."""

    version: int
    tensors: dict[str, np.ndarray]
    learner_step: int = 0
    architecture: str = ""
    stamp_ns: int = 0

    def __post_init__(self) -> None:
        self.tensors = {
            k: np.ascontiguousarray(as_array(f"PolicyWeights.tensors[{k!r}]", v, np.ndim(v)))
            for k, v in self.tensors.items()
        }


@dataclasses.dataclass
class EpisodeEvent:
    """Episode life-cycle event at control step `step` of episode `episode_id`."""

    event: Event
    episode_id: int = 0
    step: int = 0
    detail: str = ""
    stamp_ns: int = 0

    def __post_init__(self) -> None:
        self.event = Event(self.event)


@dataclasses.dataclass
class Joy:
    """A gamepad state (sensor_msgs/Joy): axes float32[N] in [-1, 1], buttons 0/1 (joy_linux order and signs)."""

    axes: np.ndarray  # float32[N]
    buttons: tuple[int, ...]
    stamp_ns: int = 0
    frame_id: str = ""

    def __post_init__(self) -> None:
        self.axes = as_array("Joy.axes", self.axes, 1)
        self.buttons = tuple(int(b) for b in self.buttons)
