"""Sim driver: the lockstep MuJoCo backend of the chunk protocol (`rlt.execution`), and the episode life cycle.

This module owns what is particular to the sim, free of ROS; the protocol itself (requests, accepted chunks,
observation stride, phases, events) is `rlt.execution.ChunkProtocol`, shared with the robot's executor:
- `begin_episode()` resets the env (seed = cfg.seed + episode index) and asks for the first chunk;
- `submit_chunk()` queues the rows of the chunk answering the pending request;
- `step()` executes one queued row in MuJoCo and reports what happened: episode events (handoff into the critical
  phase by the automatic trigger, success, timeout), the kinematic state for rendering, and a `ChunkRequest` when
  one is due (chunk boundary, observation stride, episode end);
- `operator()` takes the operator's commands (joystick buttons, `teleop/events`): hand control to RL, mark success,
  mark failure, reset. Each takes effect at the next executed step, so the rows reported before it stay consistent.
The ROS node (`rlt_nodes.sim_driver_node`) only converts and publishes what this returns.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rlt.config import Config
from rlt.execution import MODES, Chunking, ChunkProtocol, ChunkRejected, ProtocolDriver
from rlt.sim.env import AXIS_NAMES, PegInsertEnv
from rlt.sim.render import render_state
from rlt.types import ActionChunk, ChunkRequest, EpisodeEvent, Event, Phase, SimState, Source, Terminal

HANDOFF_MODES = ("auto", "manual", "never")
__all__ = ["ChunkRejected", "DriverConfig", "DriverOutput", "SimDriver"]


@dataclasses.dataclass(frozen=True)
class DriverConfig(Config):
    """How the sim driver runs episodes (C and the observation stride: `rlt.execution.Chunking`, from rl.*)."""

    mode: str = "full"  # episode start: "full" (the base VLA approaches first) or "critical" (start near the hole)
    seed: int = 0  # episode k is reset with seed + k (common random numbers across policies)
    episodes: int = 0  # stop after this many episodes; 0 = run until stopped
    critical_budget_s: float = 0.0  # stop once this much critical-phase (RL) time has run, sim s; 0 = no limit
    handoff: str = "auto"  # "auto": geometric trigger; "manual": on hand_off() (a button); "never": base policy only
    realtime_factor: float = 0.0  # 0 = lockstep as fast as the nodes allow; 1 = real time; 2 = twice as fast

    def validate(self) -> None:
        self.require_choice("mode", MODES)
        self.require_choice("handoff", HANDOFF_MODES)
        if self.episodes < 0:
            self.fail("episodes", "must be >= 0 (0 = unlimited)")
        if self.critical_budget_s < 0:
            self.fail("critical_budget_s", "must be >= 0 (0 = no limit)")
        if self.realtime_factor < 0:
            self.fail("realtime_factor", "must be >= 0 (0 = as fast as possible)")


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


class SimDriver(ProtocolDriver):
    """Lockstep executor of action chunks over one `PegInsertEnv` (see module docstring)."""

    def __init__(self, env: PegInsertEnv, cfg: DriverConfig, chunking: Chunking | None = None,
                 instruction: str = "") -> None:
        self.env, self.cfg, self.instruction = env, cfg, instruction
        self.protocol = ChunkProtocol(chunking or Chunking.default(), cfg.mode, AXIS_NAMES)
        self.period_ns = round(1e9 / env.cfg.control_hz)
        self._global_step = 0  # sim time in control periods since the driver started
        self._queue: list[tuple[np.ndarray, Source]] = []  # rows still to execute
        self._proprio = np.zeros(env.proprio_dim, np.float32)
        self._counts: dict[str, int] = {}  # executed rows per source name in the current episode
        self._operator: Event | None = None  # the operator's command, applied at the next step
        self.critical_steps_total = 0  # critical-phase control steps over all finished episodes

    # ------------------------------------------------------------------ state
    @property
    def waiting_for_chunk(self) -> bool:
        return self.protocol.running and not self._queue

    @property
    def episode_over(self) -> bool:
        return not self.protocol.running

    @property
    def finished(self) -> bool:
        """All configured episodes are done, or the critical-phase time budget is used up."""
        budget = self.cfg.critical_budget_s
        return self.episode_over and (
            (self.cfg.episodes > 0 and self.episode_id + 1 >= self.cfg.episodes)
            or (budget > 0 and self.critical_steps_total / self.env.cfg.control_hz >= budget)
        )

    @property
    def pending_request(self) -> ChunkRequest | None:
        return self.protocol.pending

    # ------------------------------------------------------------------ episode life cycle
    def begin_episode(self) -> DriverOutput:
        p = self.protocol
        if p.running:
            raise RuntimeError(f"episode {self.episode_id} is still running")
        if self.finished:
            raise RuntimeError(f"all {self.cfg.episodes} episodes are done")
        events = [] if p.episode_id < 0 else [p.event(Event.RESET, self._stamp())]
        self._global_step += 1
        obs = self.env.reset(self.cfg.seed + p.episode_id + 1, self.cfg.mode)
        self._proprio = obs.proprio
        self._queue, self._counts, self._operator = [], {}, None
        events += p.begin(self._stamp(), self.instruction, handoff=self.cfg.handoff != "never")
        return self._output(events, p.request(self._stamp(), need_chunk=True))

    def hand_off(self) -> DriverOutput:
        """Manual handoff (operator button): the critical phase starts now; the queued base chunk is dropped."""
        if self.episode_over or self.phase is Phase.CRITICAL:
            raise RuntimeError("hand_off() needs a running episode in the approach phase")
        return self._output([self._enter_critical()], self.protocol.request(self._stamp(), need_chunk=True))

    def operator(self, event: Event) -> str:
        """An operator command (HANDOFF, SUCCESS, FAILURE or RESET) for the next executed step; returns "" when
        accepted, else why it was ignored. SUCCESS and FAILURE end the episode as terminal (reward 1 / 0 on that
        step); RESET ends it without a terminal (like the time limit: nothing bootstraps from the cut); HANDOFF starts
        the critical phase (not in handoff mode "never").
        """
        if event not in (Event.HANDOFF, Event.SUCCESS, Event.FAILURE, Event.RESET):
            return f"{event.name} is not an operator command"
        if self.episode_over:
            return f"{event.name}: no episode is running"
        if event is Event.HANDOFF and (self.phase is Phase.CRITICAL or self.cfg.handoff == "never"):
            return f"HANDOFF: already in the critical phase or handoff={self.cfg.handoff!r}"
        self._operator = event
        return ""

    def submit_chunk(self, chunk: ActionChunk) -> None:
        """Queue the rows of `chunk`, which must answer the pending request (`ChunkProtocol.accept`)."""
        self._queue = [(row, chunk.source) for row in self.protocol.accept(chunk)]

    def step(self) -> DriverOutput:
        """Execute one queued row and report (see module docstring)."""
        if not self._queue:
            raise RuntimeError("no queued action: submit a chunk first (or begin an episode)")
        p = self.protocol
        row, source = self._queue.pop(0)
        executed = np.clip(row, -self.env.cfg.action_bounds, self.env.cfg.action_bounds).astype(np.float32)
        result = self.env.step(executed)
        self._global_step += 1
        self._proprio = result.obs.proprio
        p.record(executed, source, result.reward)
        if self.phase is Phase.CRITICAL:
            self._counts[source.name.lower()] = self._counts.get(source.name.lower(), 0) + 1
        events: list[EpisodeEvent] = []
        command, self._operator = self._operator, None
        ends = command in (Event.SUCCESS, Event.FAILURE, Event.RESET)
        if result.terminated or result.truncated or ends:
            by = "operator, " if ends and not result.terminated else ""
            if result.terminated or command is Event.SUCCESS:
                terminal, event = Terminal.SUCCESS, Event.SUCCESS
            elif command is Event.FAILURE:
                terminal, event = Terminal.FAILURE, Event.FAILURE
            elif command is Event.RESET:
                terminal, event = Terminal.TIMEOUT, Event.RESET  # cut short: not terminal for bootstrapping
            else:
                terminal, event = Terminal.TIMEOUT, Event.TIMEOUT
            self._queue = []
            ev, request = p.end(self._stamp(), terminal, event, f"{by}{p.step} steps")
            out = self._output([ev], request)
            out.summary = self._summary(terminal is Terminal.SUCCESS)
            return out
        if self.phase is Phase.APPROACH and (
            command is Event.HANDOFF or (self.cfg.handoff == "auto" and self.env.in_critical_phase())
        ):
            events.append(self._enter_critical())
            return self._output(events, p.request(self._stamp(), need_chunk=True))
        if not self._queue:
            return self._output(events, p.request(self._stamp(), need_chunk=True))
        if p.observation_due():
            return self._output(events, p.request(self._stamp(), need_chunk=False))
        return self._output(events, None)

    # ------------------------------------------------------------------ helpers
    def _summary(self, success: bool) -> dict[str, object]:
        p = self.protocol
        critical = self.phase is Phase.CRITICAL
        self.critical_steps_total += p.step - p.handoff_step if critical else 0
        return {
            "episode": self.episode_id,
            "seed": self.cfg.seed + self.episode_id,
            "mode": self.cfg.mode,
            "success": success,
            "steps": p.step,
            "handoff_step": p.handoff_step if critical else -1,
            "critical_steps": p.step - p.handoff_step if critical else 0,
            "critical_rows": dict(self._counts),
            "control_hz": self.env.cfg.control_hz,
            "critical_steps_total": self.critical_steps_total,
        }

    def _enter_critical(self) -> EpisodeEvent:
        self._queue = []
        return self.protocol.enter_critical(self._stamp())

    def _stamp(self) -> int:
        return self._global_step * self.period_ns

    def _output(self, events: list[EpisodeEvent], request: ChunkRequest | None) -> DriverOutput:
        qpos, mocap, params = render_state(self.env)
        p = self.protocol
        state = SimState(self.episode_id, p.step, qpos, mocap, params, self._stamp())
        return DriverOutput(self.episode_id, p.step, self._stamp(), self._proprio, state, events, request,
                            not p.running)
