"""Chunk executor: the robot-side driver that turns `ActionChunk`s into safe joint targets at the control rate.

It is the ros2_control backend of the chunk protocol (`rlt.execution.ChunkProtocol`, shared with the sim's
`rlt.sim.driver`), without lockstep (a robot cannot pause). What it adds to the protocol:
- episodes: operator commands (RESET/START, HANDOFF, SUCCESS, FAILURE; from the gamepad's teleop node or the command
  line) drive the life cycle (see `on_operator`); the executor numbers episodes, counts control steps, reports the
  canonical `EpisodeEvent`s and ends an episode with TIMEOUT after `max_episode_s`;
- requests: after the last row of a chunk it sends a `ChunkRequest` (need_chunk) stamped with the current time and
  reporting the rows it executed since its previous request; in the critical phase also one every `observe_stride`
  steps (need_chunk false) so the actor can store stride-2 samples, as in the sim;
- chunks: only the chunk answering the pending request (same stamp) is accepted, and only if it is fresh
  (`max_chunk_age_s`), finite and on known axes: stale, out-of-order, duplicate or foreign chunks are refused with a
  reason. Rows are end-effector deltas (`action_axes`) or joint deltas (axis names = `joint_names`);
- every tick executes one row through `rlt.robot.safety.SafetyFilter` and returns the next joint targets (plus a
  short lookahead so the controller interpolates smoothly);
- watchdog: it holds position (one stop point at the current target) when no fresh chunk is there when the current
  one runs out, when joint states go stale, when the measured joints drift from the targets by more than
  `max_tracking_error`, on an unsafe row, and whenever no episode runs. A refused-as-stale chunk triggers a fresh
  request.
Time is passed in (ns, ROS time) by the caller, so every rule is tested with literal clocks.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rlt.config import Config
from rlt.execution import MODES, Chunking, ChunkProtocol, ChunkRejected, ProtocolDriver
from rlt.robot.kinematics import Kinematics, load_kinematics
from rlt.robot.safety import SafetyConfig, SafetyFilter, UnsafeAction
from rlt.types import ActionChunk, ChunkRequest, EpisodeEvent, Event, Phase, Source, Terminal

__all__ = ["SIM_JOINTS", "STAGES", "ChunkExecutor", "ChunkRejected", "Command", "ExecutorConfig", "ExecutorOutput",
           "stage_latencies"]

# the sim robot (rlt.sim.scene.JOINT_NAMES): a Cartesian x/y/z/yaw stage plus two tilt joints; the defaults below
# make the executor drive it, and show the format for a real arm
SIM_JOINTS: tuple[str, ...] = ("x", "y", "z", "yaw", "pitch", "roll")
# row-major A[4, N] of p = A q + b: (x, y, z, yaw) <- the first four joints
SIM_EE_MAP: tuple[float, ...] = tuple(float(i == j) for i in range(4) for j in range(len(SIM_JOINTS)))
# the stages of a chunk, each timed from the end of the one before: observation -> VLA output -> chunk sent (actor)
# -> accepted here -> first row commanded; and the whole path
STAGES: tuple[str, ...] = ("obs_to_vla_output", "vla_output_to_chunk_sent", "chunk_sent_to_accepted",
                           "accepted_to_first_row", "obs_to_first_row")


def stage_latencies(chunk: ActionChunk, accepted_ns: int, first_row_ns: int) -> dict[str, float]:
    """Seconds per stage of `chunk` (`STAGES`), from the stage times it carries; a stage it did not go through (a
    human chunk has no VLA pass) is left out."""
    out = {"accepted_to_first_row": (first_row_ns - accepted_ns) * 1e-9,
           "obs_to_first_row": (first_row_ns - chunk.stamp_ns) * 1e-9}
    if chunk.vla_ns:
        out["obs_to_vla_output"] = (chunk.vla_ns - chunk.stamp_ns) * 1e-9
    if chunk.vla_ns and chunk.sent_ns:
        out["vla_output_to_chunk_sent"] = (chunk.sent_ns - chunk.vla_ns) * 1e-9
    if chunk.sent_ns:
        out["chunk_sent_to_accepted"] = (accepted_ns - chunk.sent_ns) * 1e-9
    return out


@dataclasses.dataclass(frozen=True)
class ExecutorConfig(Config):
    """What the executor drives and how (the safety limits are `SafetyConfig`; C and the observation stride are
    `rlt.execution.Chunking`, from rl.*)."""

    joint_names: tuple[str, ...] = SIM_JOINTS  # controller joints, in the order JointTrajectory lists them
    action_axes: tuple[str, ...] = ("dx", "dy", "dz", "dyaw")  # end-effector action columns (the VLA's axes)
    control_hz: float = 20.0  # rows executed per second
    mode: str = "full"  # "full": episodes start in the approach phase; "critical": they start in the critical phase
    kinematics: str = "linear"  # "linear" (ee_map, ee_offset) or "package.module:ClassName" (rlt.robot.kinematics)
    ee_map: tuple[float, ...] = SIM_EE_MAP  # linear kinematics: row-major A[4, N], p = A q + b
    ee_offset: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)  # linear kinematics: b[4] (m, m, m, rad)
    max_chunk_age_s: float = 0.5  # refuse a chunk computed from an observation older than this
    max_state_age_s: float = 0.2  # hold when the newest joint state is older than this
    lookahead: int = 2  # trajectory points sent per tick (the last one at rest)
    max_episode_s: float = 0.0  # end an episode with TIMEOUT after this long; 0 = never
    auto_start: bool = False  # begin episode 0 as soon as joint states arrive (else wait for an operator START)

    def validate(self) -> None:
        if not self.joint_names or len(set(self.joint_names)) != len(self.joint_names):
            self.fail("joint_names", "needs at least one joint, no duplicates")
        if len(self.action_axes) != 4:
            self.fail("action_axes", "needs the 4 end-effector delta axes (dx, dy, dz, dyaw order)")
        if set(self.action_axes) & set(self.joint_names):
            self.fail("action_axes", f"must not share names with joint_names={self.joint_names}")
        self.require_positive("control_hz", "max_chunk_age_s", "max_state_age_s", "lookahead")
        self.require_choice("mode", MODES)
        if self.kinematics == "linear":
            if len(self.ee_map) != 4 * len(self.joint_names):
                self.fail("ee_map", f"needs 4 x {len(self.joint_names)} values (row-major, joints {self.joint_names})")
            if len(self.ee_offset) != 4:
                self.fail("ee_offset", "needs 4 values (x, y, z, yaw)")
        if self.max_episode_s < 0:
            self.fail("max_episode_s", "must be >= 0 (0 = no limit)")


@dataclasses.dataclass
class Command:
    """Joint targets for the trajectory controller: point k is reached `times_s[k]` after now."""

    positions: np.ndarray  # float64[K, N]
    velocities: np.ndarray  # float64[K, N]; the last point is at rest
    times_s: np.ndarray  # float64[K]


@dataclasses.dataclass
class ExecutorOutput:
    """What one call produced; the node publishes each non-empty part."""

    command: Command | None = None
    requests: list[ChunkRequest] = dataclasses.field(default_factory=list)  # in order
    events: list[EpisodeEvent] = dataclasses.field(default_factory=list)
    hold_reason: str = ""  # non-empty when this output starts holding position, with why
    limited: tuple[str, ...] = ()  # safety limits that changed this tick's row
    # when this tick commands a chunk's first row: the latency (s) of each stage that made it (`STAGES`)
    stages: dict[str, float] = dataclasses.field(default_factory=dict)
    stall: str = ""  # non-empty when a silent producer is first noticed: which topic stopped, for how long
    resumed: str = ""  # non-empty when the chunk that ends a stall is executed


class ChunkExecutor(ProtocolDriver):
    """See the module docstring."""

    def __init__(self, cfg: ExecutorConfig, safety: SafetyConfig, kinematics: Kinematics | None = None,
                 chunking: Chunking | None = None) -> None:
        self.cfg = cfg
        self.kin = kinematics or load_kinematics(cfg.kinematics, cfg.joint_names, cfg.ee_map, cfg.ee_offset)
        if tuple(self.kin.joint_names) != cfg.joint_names:
            raise ValueError(
                f"kinematics joints {self.kin.joint_names} != ExecutorConfig.joint_names {cfg.joint_names}"
            )
        self.protocol = ChunkProtocol(chunking or Chunking.default(), cfg.mode, cfg.action_axes,
                                      (cfg.action_axes, cfg.joint_names))
        self.filter = SafetyFilter(safety, self.kin, cfg.control_hz)
        self.safety = safety
        self.dt = 1.0 / cfg.control_hz
        self.q_cmd: np.ndarray | None = None  # float64[N], the last commanded target
        self.q_meas: np.ndarray | None = None  # float64[N], the newest measured joint positions
        self.meas_ns = 0
        self.holding = ""  # why the arm holds position ("" while it moves)
        self._hold_key = ""  # what identifies the current hold (its stop point is sent once)
        self._episode_start_ns = 0
        self._rows: list[np.ndarray] = []  # rows of the current chunk still to execute
        self._mode = "ee"  # "ee" or "joint": what the current chunk's rows are
        self._source = Source.VLA
        # accepted chunk waiting for its turn: its rows, their mode, the chunk, when it was accepted (ns)
        self._next: tuple[list[np.ndarray], str, ActionChunk, int] | None = None
        self._refresh = False  # the pending request's answer came too late: ask again with a fresh observation
        self.rejected = 0  # chunks refused so far
        self.steps_executed = 0  # control steps that executed a row, over all episodes
        self.steps_missed = 0  # control steps of a running episode with no fresh chunk to execute (watchdog)
        # liveness: one chunk period without an answer is a stall; vla/output answers tell the VLA from the actor
        self.chunk_period_s = self.protocol.chunking.chunk_len / cfg.control_hz
        self.stalled = ""  # the silent topic while a stall lasts
        self.stalls = 0  # stalls noticed so far
        self._waiting_since: int | None = None  # stamp of the oldest unanswered request since the last chunk
        self._vla_answered = 0  # newest request stamp the VLA answered (vla/output)

    @property
    def step_count(self) -> int:
        """Control steps executed in the episode."""
        return self.protocol.step

    @property
    def pending_stamp_ns(self) -> int | None:
        """Stamp of the request a chunk must answer now (None: no chunk is awaited)."""
        pending = self.protocol.pending
        return None if pending is None else pending.stamp_ns

    # ------------------------------------------------------------------ inputs
    def on_vla_output(self, request_stamp_ns: int) -> None:
        """The VLA answered the request of this stamp (its `vla/output`): a stall past it is the actor's."""
        self._vla_answered = max(self._vla_answered, request_stamp_ns)

    def on_joint_state(self, position: np.ndarray, stamp_ns: int) -> None:
        """Measured positions float[N] in `joint_names` order."""
        position = np.asarray(position, np.float64)
        if position.shape != (len(self.cfg.joint_names),) or not np.isfinite(position).all():
            raise ValueError(f"joint state {position.tolist()}: expected {len(self.cfg.joint_names)} finite positions")
        self.q_meas, self.meas_ns = position, stamp_ns

    def on_operator(self, event: Event, now_ns: int, detail: str = "") -> ExecutorOutput:
        """An operator command (the gamepad's buttons, see rlt.teleop.teleop):
        - RESET (the Start button) ends a running episode without a terminal (nothing bootstraps from the cut) and
          holds; pressed again (no episode running: the scene is reset by hand) it begins the next episode;
        - START begins an episode at once, ending a running one first;
        - SUCCESS / FAILURE end the episode as terminal (reward 1 / 0 on its last step) and hold;
        - HANDOFF starts the critical phase (the RL actor drives).
        Others (interventions) are not the executor's: the actor handles them."""
        event = Event(event)
        out = ExecutorOutput()
        if event is Event.START or (event is Event.RESET and not self.running):
            if self.running:
                self._end(out, Terminal.TIMEOUT, Event.RESET, now_ns, "restarted by the operator")
            self._begin(out, now_ns, detail)
        elif event is Event.RESET:
            self._end(out, Terminal.TIMEOUT, Event.RESET, now_ns, detail or "reset by the operator")
        elif event in (Event.SUCCESS, Event.FAILURE) and self.running:
            terminal = Terminal.SUCCESS if event is Event.SUCCESS else Terminal.FAILURE
            self._end(out, terminal, event, now_ns, detail or "operator")
        elif event is Event.HANDOFF and self.running and self.phase is Phase.APPROACH:
            out.events.append(self.protocol.enter_critical(now_ns))
            self._rows, self._next = [], None  # the base policy's remaining rows are dropped, as in the sim
            out.requests.append(self.protocol.request(now_ns, need_chunk=True))
        return out

    def submit_chunk(self, chunk: ActionChunk, now_ns: int) -> None:
        """Accept `chunk` as the answer to the pending request if it is also fresh, or raise ChunkRejected."""
        try:
            self.protocol.check(chunk)
            age_s = (now_ns - chunk.stamp_ns) * 1e-9
            if age_s > self.cfg.max_chunk_age_s:
                self.protocol.pending, self._refresh = None, True  # ask again, with a fresh observation
                raise ChunkRejected(f"chunk {chunk.chunk_id} (stamp {chunk.stamp_ns}): computed from an observation "
                                    f"{age_s:.3f} s old (> {self.cfg.max_chunk_age_s})")
        except ChunkRejected:
            self.rejected += 1
            raise
        rows = [np.asarray(r, np.float64) for r in self.protocol.accept(chunk)]
        mode = "ee" if tuple(chunk.axis_names) == self.cfg.action_axes else "joint"
        self._next = (rows, mode, chunk, now_ns)
        self._waiting_since = None

    # ------------------------------------------------------------------ the control tick
    def tick(self, now_ns: int) -> ExecutorOutput:
        """One control period: health checks, then one row (or a hold), and a request when one is due."""
        out = ExecutorOutput()
        if self.q_meas is None:
            return out  # nothing to command before the first joint state
        if self.q_cmd is None:
            self.q_cmd = self.q_meas.copy()
            if self.cfg.auto_start and self.episode_id < 0:
                self._begin(out, now_ns, "auto start")
        state_age_s = (now_ns - self.meas_ns) * 1e-9
        if state_age_s > self.cfg.max_state_age_s:
            return self._hold(out, f"joint_states silent: the newest is {state_age_s:.3f} s old "
                                   f"(> {self.cfg.max_state_age_s})", key="stale joint states")
        error = float(np.max(np.abs(self.q_meas - self.q_cmd)))
        if self.safety.max_tracking_error and error > self.safety.max_tracking_error:
            self.q_cmd = self.q_meas.copy()  # hold where the arm is, not where it was told to be
            self._rows, self._next = [], None
            if self.running and self.protocol.pending is None:
                out.requests.append(self.protocol.request(now_ns, need_chunk=True))
            return self._hold(out, f"tracking error {error:.3f} > {self.safety.max_tracking_error}: chunk dropped")
        if (
            self.running
            and self.cfg.max_episode_s
            and (now_ns - self._episode_start_ns) * 1e-9 > self.cfg.max_episode_s
        ):
            self._end(out, Terminal.TIMEOUT, Event.TIMEOUT, now_ns, f"{self.cfg.max_episode_s:.0f} s")
        if not self.running:
            return self._hold(out, "no episode running")
        pending = self.protocol.pending
        if pending is not None and (now_ns - pending.stamp_ns) * 1e-9 > self.cfg.max_chunk_age_s:
            self.protocol.pending, self._refresh = None, True  # unanswered (lost, or the policy side down): ask again
        if self._refresh and self.protocol.pending is None and self._next is None:
            self._refresh = False
            out.requests.append(self.protocol.request(now_ns, need_chunk=True))
        self._check_liveness(out, now_ns)
        first_of = None
        if not self._rows and self._next is not None:
            self._rows, self._mode, *first_of = self._next
            self._source, self._next = Source(first_of[0].source), None
        if not self._rows:
            if not self.step_count:
                return self._hold(out, "waiting for the episode's first chunk")
            self.steps_missed += 1
            return self._hold(out, "no fresh chunk before the current one ran out (watchdog)")
        row = self._rows.pop(0)
        try:
            safe = self.filter.step(self.q_cmd, row, self._mode)
        except UnsafeAction as exc:
            self._rows = []
            if self.protocol.pending is None:
                out.requests.append(self.protocol.request(now_ns, need_chunk=True))
            return self._hold(out, f"unsafe row dropped with its chunk: {exc}")
        self._record(self.q_cmd, safe.target)
        self.q_cmd = safe.target
        self.steps_executed += 1
        if first_of is not None:
            out.stages = stage_latencies(*first_of, now_ns)
        if first_of is not None and self.stalled:
            out.resumed, self.stalled = f"{self.stalled} is back: executing its chunk", ""
        self.holding = self._hold_key = ""
        out.limited = safe.limited
        out.command = self._lookahead(safe.target)
        if not self._rows and self._next is None and self.protocol.pending is None:
            out.requests.append(self.protocol.request(now_ns, need_chunk=True))
        elif not out.requests and self.protocol.observation_due():
            out.requests.append(self.protocol.request(now_ns, need_chunk=False))
        return out

    # ------------------------------------------------------------------ helpers
    def _lookahead(self, target: np.ndarray) -> Command:
        """Target now plus up to lookahead-1 filtered future rows of the current chunk; the last point at rest."""
        points = [target]
        q = target
        for row in self._rows[: self.cfg.lookahead - 1]:
            try:
                q = self.filter.step(q, row, self._mode).target
            except UnsafeAction:
                break
            points.append(q)
        positions = np.stack(points)  # float64[K, N]
        velocities = np.zeros_like(positions)
        velocities[:-1] = (positions[1:] - positions[:-1]) / self.dt
        return Command(positions, velocities, self.dt * np.arange(1, len(points) + 1))

    def _check_liveness(self, out: ExecutorOutput, now_ns: int) -> None:
        """A request unanswered for one chunk period is a stall, reported once, naming the silent topic; while it
        lasts, a renewed request unanswered for a period names again if the silent topic changed (a VLA stopped
        mid-delivery: the executor got its answer, the actor did not, and the next request shows the VLA silent)."""
        pending = self.protocol.pending
        if pending is not None and self._waiting_since is None:
            self._waiting_since = pending.stamp_ns
        if self._waiting_since is None or (self.stalled and pending is None):
            return
        since = self._waiting_since if pending is None or not self.stalled else pending.stamp_ns
        age_s = (now_ns - since) * 1e-9
        vla_answered = self._vla_answered >= (self._waiting_since if pending is None else pending.stamp_ns)
        silent = "action_chunk" if vla_answered else "vla/output"
        if age_s <= self.chunk_period_s or silent == self.stalled:
            return
        self.stalls += not self.stalled  # a renamed stall is the same stall
        self.stalled = silent
        out.stall = (f"{silent} silent for {age_s:.2f} s (> one chunk period, {self.chunk_period_s:g} s): "
                     + ("the VLA answered, the actor did not" if vla_answered else "the VLA has not answered"))

    def _hold(self, out: ExecutorOutput, reason: str, key: str = "") -> ExecutorOutput:
        """Stop at the current target; the stop point is sent once per hold `key` (default: the reason itself; a
        reason that states a changing age passes a fixed key, so it is one hold, logged once)."""
        key = key or reason
        if self._hold_key != key and self.q_cmd is not None:
            out.command = Command(self.q_cmd[None].copy(), np.zeros((1, self.q_cmd.size)), np.array([self.dt]))
            out.hold_reason = reason
        self.holding, self._hold_key = reason, key
        return out

    def _record(self, q_before: np.ndarray, q_after: np.ndarray) -> None:
        """The row as actually executed, in the action axes: the pose change (whatever the chunk's axes were)."""
        executed = self.kin.forward(q_after) - self.kin.forward(q_before)  # float64[4]
        executed[3] = (executed[3] + np.pi) % (2 * np.pi) - np.pi  # yaw change, wrapped
        self.protocol.record(executed, self._source)

    def _begin(self, out: ExecutorOutput, now_ns: int, detail: str) -> None:
        self._episode_start_ns = now_ns
        self._rows, self._next, self._refresh, self._mode = [], None, False, "ee"
        self._waiting_since = None  # a stall lasts across episodes until the silent topic answers
        if self.q_meas is not None:
            self.q_cmd = self.q_meas.copy()
        out.events += self.protocol.begin(now_ns, detail)
        out.requests.append(self.protocol.request(now_ns, need_chunk=True))

    def _end(self, out: ExecutorOutput, terminal: Terminal, event: Event, now_ns: int, detail: str) -> None:
        """Report the rows since the last request with the outcome; the arm holds until the next START."""
        if not self.protocol.unreported and terminal is not Terminal.TIMEOUT:
            # the outcome needs a step to land on: the step the arm spent holding when the operator judged it
            self.protocol.record(np.zeros(len(self.cfg.action_axes), np.float32), self._source)
        ev, request = self.protocol.end(now_ns, terminal, event, detail)
        out.events.append(ev)
        out.requests.append(request)
        self._rows, self._next, self._refresh = [], None, False
        self._waiting_since = None  # a stall lasts across episodes until the silent topic answers
