"""Sim driver: executes action chunks row by row in the MuJoCo task and runs the episode life cycle.

This module owns the lockstep protocol between the sim and the policy side, free of ROS:
- `begin_episode()` resets the env (seed = cfg.seed + episode index) and asks for the first chunk;
- `submit_chunk()` queues the rows of the chunk answering the pending request (stale or foreign chunks are
  rejected with a reason);
- `step()` executes one queued row and reports what happened: episode events (handoff into the critical
  phase by the automatic trigger, success, timeout), the kinematic state for rendering, and a `ChunkRequest`
  when one is due: at a chunk boundary (queue empty), every `observe_stride` steps of the critical phase (the
  stride-2 subsampling of the paper; the VLA runs there too so every stored sample has its own z_rl and ã),
  and at the episode's end (terminal report);
- `operator()` takes the operator's commands (joystick buttons, `teleop/events`): hand control to RL, mark success,
  mark failure, reset. Each takes effect at the next executed step, so the rows reported before it stay consistent.
The ROS node (`rlt_nodes.sim_driver_node`) only converts and publishes what this returns.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rlt.config import Config
from rlt.sim.env import AXIS_NAMES, PegInsertEnv
from rlt.sim.render import render_state
from rlt.types import ActionChunk, ChunkRequest, EpisodeEvent, Event, Phase, SimState, Source, Terminal

HANDOFF_MODES = ("auto", "manual", "never")


@dataclasses.dataclass(frozen=True)
class DriverConfig(Config):
    """How the sim driver runs episodes."""

    mode: str = "full"  # episode start: "full" (the base VLA approaches first) or "critical" (start near the hole)
    seed: int = 0  # episode k is reset with seed + k (common random numbers across policies)
    episodes: int = 0  # stop after this many episodes; 0 = run until stopped
    critical_budget_s: float = 0.0  # stop once this much critical-phase (RL) time has run, sim s; 0 = no limit
    chunk_len: int = 10  # rows of each incoming chunk that are executed (C); longer chunks are truncated
    observe_stride: int = 2  # critical phase: a VLA pass every this many steps (0 = chunk boundaries only)
    handoff: str = "auto"  # "auto": geometric trigger; "manual": on hand_off() (a button); "never": base policy only
    realtime_factor: float = 0.0  # 0 = lockstep as fast as the nodes allow; 1 = real time; 2 = twice as fast

    def validate(self) -> None:
        self.require_choice("mode", ("full", "critical"))
        self.require_choice("handoff", HANDOFF_MODES)
        self.require_positive("chunk_len")
        if self.episodes < 0:
            self.fail("episodes", "must be >= 0 (0 = unlimited)")
        if self.observe_stride < 0 or (self.observe_stride and self.chunk_len % self.observe_stride):
            self.fail("observe_stride", f"must be 0 or divide chunk_len={self.chunk_len}")
        if self.critical_budget_s < 0:
            self.fail("critical_budget_s", "must be >= 0 (0 = no limit)")
        if self.realtime_factor < 0:
            self.fail("realtime_factor", "must be >= 0 (0 = as fast as possible)")


class ChunkRejected(ValueError):
    """An ActionChunk that does not answer the pending request."""


@dataclasses.dataclass
class DriverOutput:
    """What one driver call produced; the node publishes each non-empty part."""

    episode_id: int
    step: int  # control step within the episode
    stamp_ns: int  # sim time of the state below
    proprio: np.ndarray  # float32[12]
    sim_state: SimState
    events: list[EpisodeEvent]
    request: ChunkRequest | None  # a VLA pass (and a chunk if request.need_chunk) is asked for
    episode_over: bool
    summary: dict[str, object] | None = None  # at the end of an episode: outcome, durations, who acted


class SimDriver:
    """Lockstep executor of action chunks over one `PegInsertEnv` (see module docstring)."""

    def __init__(self, env: PegInsertEnv, cfg: DriverConfig, instruction: str = "") -> None:
        self.env, self.cfg, self.instruction = env, cfg, instruction
        self.period_ns = round(1e9 / env.cfg.control_hz)
        self.episode_id = -1
        self.phase = Phase.APPROACH
        self._global_step = 0  # sim time in control periods since the driver started
        self._queue: list[tuple[np.ndarray, Source]] = []  # rows still to execute
        self._pending: ChunkRequest | None = None  # the request a chunk must answer
        self._executed: list[np.ndarray] = []  # rows executed since the last request, float32[D] each
        self._sources: list[Source] = []
        self._rewards: list[float] = []
        self._handoff_step = 0
        self._over = True
        self._proprio = np.zeros(env.proprio_dim, np.float32)
        self._t = 0  # control step within the episode
        self._counts: dict[str, int] = {}  # executed rows per source name in the current episode
        self._operator: Event | None = None  # the operator's command, applied at the next step
        self.critical_steps_total = 0  # critical-phase control steps over all finished episodes

    # ------------------------------------------------------------------ state
    @property
    def waiting_for_chunk(self) -> bool:
        return not self._over and not self._queue

    @property
    def episode_over(self) -> bool:
        return self._over

    @property
    def finished(self) -> bool:
        """All configured episodes are done, or the critical-phase time budget is used up."""
        budget = self.cfg.critical_budget_s
        return self._over and (
            (self.cfg.episodes > 0 and self.episode_id + 1 >= self.cfg.episodes)
            or (budget > 0 and self.critical_steps_total / self.env.cfg.control_hz >= budget)
        )

    @property
    def pending_request(self) -> ChunkRequest | None:
        return self._pending

    # ------------------------------------------------------------------ episode life cycle
    def begin_episode(self) -> DriverOutput:
        if not self._over:
            raise RuntimeError(f"episode {self.episode_id} is still running")
        if self.finished:
            raise RuntimeError(f"all {self.cfg.episodes} episodes are done")
        events = [] if self.episode_id < 0 else [self._event(Event.RESET)]
        self.episode_id += 1
        self._global_step += 1
        obs = self.env.reset(self.cfg.seed + self.episode_id, self.cfg.mode)
        self._proprio, self._t = obs.proprio, obs.step
        self._over, self._queue, self._counts, self._operator = False, [], {}, None
        self._executed, self._sources, self._rewards = [], [], []
        self.phase = Phase.APPROACH
        events.append(self._event(Event.START, self.instruction))
        if self.cfg.mode == "critical" and self.cfg.handoff != "never":
            events.append(self._enter_critical())
        return self._output(events, self._request(need_chunk=True))

    def hand_off(self) -> DriverOutput:
        """Manual handoff (operator button): the critical phase starts now; the queued base chunk is dropped."""
        if self._over or self.phase is Phase.CRITICAL:
            raise RuntimeError("hand_off() needs a running episode in the approach phase")
        return self._output([self._enter_critical()], self._request(need_chunk=True))

    def operator(self, event: Event) -> str:
        """An operator command (HANDOFF, SUCCESS, FAILURE or RESET) for the next executed step; returns "" when
        accepted, else why it was ignored. SUCCESS and FAILURE end the episode as terminal (reward 1 / 0 on that
        step); RESET ends it without a terminal (like the time limit: nothing bootstraps from the cut); HANDOFF starts
        the critical phase (not in handoff mode "never").
        """
        if event not in (Event.HANDOFF, Event.SUCCESS, Event.FAILURE, Event.RESET):
            return f"{event.name} is not an operator command"
        if self._over:
            return f"{event.name}: no episode is running"
        if event is Event.HANDOFF and (self.phase is Phase.CRITICAL or self.cfg.handoff == "never"):
            return f"HANDOFF: already in the critical phase or handoff={self.cfg.handoff!r}"
        self._operator = event
        return ""

    def submit_chunk(self, chunk: ActionChunk) -> None:
        """Queue the rows of `chunk`, which must answer the pending request (same stamp)."""
        if self._pending is None or not self._pending.need_chunk or self._queue:
            raise ChunkRejected(f"chunk {chunk.chunk_id}: no chunk is awaited (episode {self.episode_id})")
        if chunk.stamp_ns != self._pending.stamp_ns:
            raise ChunkRejected(
                f"chunk {chunk.chunk_id}: stamp {chunk.stamp_ns} does not answer the pending request "
                f"(episode {self.episode_id}, step {self._pending.step}, stamp {self._pending.stamp_ns})"
            )
        if chunk.axis_names != AXIS_NAMES:
            raise ChunkRejected(f"chunk {chunk.chunk_id}: axis_names {chunk.axis_names}, expected {AXIS_NAMES}")
        rows = chunk.data[: self.cfg.chunk_len]
        self._queue = [(row, chunk.source) for row in rows]
        self._pending = None

    def step(self) -> DriverOutput:
        """Execute one queued row and report (see module docstring)."""
        if not self._queue:
            raise RuntimeError("no queued action: submit a chunk first (or begin an episode)")
        row, source = self._queue.pop(0)
        executed = np.clip(row, -self.env.cfg.action_bounds, self.env.cfg.action_bounds).astype(np.float32)
        result = self.env.step(executed)
        self._global_step += 1
        self._proprio, self._t = result.obs.proprio, result.obs.step
        self._executed.append(executed)
        self._sources.append(source)
        self._rewards.append(result.reward)
        if self.phase is Phase.CRITICAL:
            self._counts[source.name.lower()] = self._counts.get(source.name.lower(), 0) + 1
        t = result.obs.step
        events: list[EpisodeEvent] = []
        command, self._operator = self._operator, None
        ends = command in (Event.SUCCESS, Event.FAILURE, Event.RESET)
        if result.terminated or result.truncated or ends:
            by = "operator, " if ends and not result.terminated else ""
            if result.terminated or command is Event.SUCCESS:
                terminal, event = Terminal.SUCCESS, Event.SUCCESS
                self._rewards[-1] = 1.0
            elif command is Event.FAILURE:
                terminal, event = Terminal.FAILURE, Event.FAILURE
            elif command is Event.RESET:
                terminal, event = Terminal.TIMEOUT, Event.RESET  # cut short: not terminal for bootstrapping
            else:
                terminal, event = Terminal.TIMEOUT, Event.TIMEOUT
            events.append(self._event(event, f"{by}{t} steps"))
            self._over, self._queue = True, []
            out = self._output(events, self._request(need_chunk=False, terminal=terminal))
            out.summary = self._summary(terminal is Terminal.SUCCESS)
            return out
        if self.phase is Phase.APPROACH and (
            command is Event.HANDOFF or (self.cfg.handoff == "auto" and self.env.in_critical_phase())
        ):
            events.append(self._enter_critical())
            return self._output(events, self._request(need_chunk=True))
        stride = self.cfg.observe_stride
        if not self._queue:
            return self._output(events, self._request(need_chunk=True))
        if self.phase is Phase.CRITICAL and stride and (t - self._handoff_step) % stride == 0:
            return self._output(events, self._request(need_chunk=False))
        return self._output(events, None)

    # ------------------------------------------------------------------ helpers
    def _summary(self, success: bool) -> dict[str, object]:
        critical = self.phase is Phase.CRITICAL
        self.critical_steps_total += self._t - self._handoff_step if critical else 0
        return {
            "episode": self.episode_id,
            "seed": self.cfg.seed + self.episode_id,
            "mode": self.cfg.mode,
            "success": success,
            "steps": self._t,
            "handoff_step": self._handoff_step if critical else -1,
            "critical_steps": self._t - self._handoff_step if critical else 0,
            "critical_rows": dict(self._counts),
            "control_hz": self.env.cfg.control_hz,
            "critical_steps_total": self.critical_steps_total,
        }

    def _enter_critical(self) -> EpisodeEvent:
        self.phase = Phase.CRITICAL
        self._handoff_step = self._t
        self._queue = []
        return self._event(Event.HANDOFF)

    def _stamp(self) -> int:
        return self._global_step * self.period_ns

    def _event(self, event: Event, detail: str = "") -> EpisodeEvent:
        return EpisodeEvent(event, self.episode_id, self._t, detail, self._stamp())

    def _request(self, need_chunk: bool, terminal: Terminal = Terminal.NONE) -> ChunkRequest:
        request = ChunkRequest(
            episode_id=self.episode_id,
            step=self._t,
            axis_names=AXIS_NAMES,
            phase=self.phase,
            need_chunk=need_chunk,
            terminal=terminal,
            executed=np.array(self._executed, np.float32).reshape(-1, len(AXIS_NAMES)),
            sources=tuple(self._sources),
            rewards=np.array(self._rewards, np.float32),
            stamp_ns=self._stamp(),
        )
        self._executed, self._sources, self._rewards = [], [], []
        if need_chunk:
            self._pending = request
        return request

    def _output(self, events: list[EpisodeEvent], request: ChunkRequest | None) -> DriverOutput:
        qpos, mocap, params = render_state(self.env)
        state = SimState(self.episode_id, self._t, qpos, mocap, params, self._stamp())
        return DriverOutput(self.episode_id, self._t, self._stamp(), self._proprio, state, events, request, self._over)
