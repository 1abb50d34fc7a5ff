"""A scripted "human" for the sim: the scripted teleoperator driving the joystick, so intervention runs end to end.

This module owns when the scripted human takes over and what it does with the sticks. It follows the driver's
`sim/state` with a mirror of the scene (`rlt.sim.render.apply_state`) and the episode events. In the chosen
episodes (`every`, `offset`) it holds the dead-man button for `duration_steps` steps (0: to the episode's end) from
- trigger "schedule": `start_step` steps after the hand-off (a fixed window, to exercise the path), or
- trigger "stall": the step at which it sees the peg stalled: the tip within `stall_height` of the rim and
  less than `stall_distance` lower than `stall_steps` steps before (an operator who watches the robot push on the
  rim and takes over: it lifts the peg to `recover_height`, re-aligns and inserts, as the paper's operator
  intervenes where the policy fails),
and deflects the sticks so that the teleop mapping (`rlt.teleop.teleop.Teleop`, same per-device `JoyMapping`) commands
the scripted teleoperator's action (`rlt.sim.expert.ScriptedTeleop`). It sees the hole as a person would
(`perception` "noisy": `ExpertConfig`'s per-episode bias and per-step noise), or, as a labelled upper bound, the
simulator's true pose ("privileged"). Its output is a Joy
state (axes, buttons), exactly what a gamepad would give; everything after that is the real teleop path.
The expert's P gain assumes a new action every control step; a human chunk holds one action for a whole chunk, so
the gain here is lower (`gain`), and its P terms steer the servo targets (`sim/state` carries them), as a person
keeps moving the stick until the arm follows.
It must not import rclpy or any message package.
"""

from __future__ import annotations

import dataclasses
from collections import deque

import numpy as np

from rlt.config import Config
from rlt.sim.config import ExpertConfig, SimConfig
from rlt.sim.env import PegInsertEnv
from rlt.sim.expert import FINISH_HEIGHT, ScriptedTeleop
from rlt.sim.render import apply_state
from rlt.teleop.teleop import JoyMapping, joy_axes_for_action
from rlt.types import EpisodeEvent, Event, SimState

_ENDS = (Event.SUCCESS, Event.FAILURE, Event.TIMEOUT, Event.RESET)
TRIGGERS = ("schedule", "stall")
PERCEPTIONS = ("noisy", "privileged")


@dataclasses.dataclass(frozen=True)
class ScriptedHumanConfig(Config):
    """When the scripted human intervenes and how its gamepad looks."""

    every: int = 1  # intervene in episodes whose id % every == offset; 0 = never
    offset: int = 0  # see every: which episodes of each `every` the human takes
    trigger: str = "stall"  # stall: when the peg stalls (stall_*); schedule: at start_step after the hand-off
    start_step: int = 2  # schedule: take over this many control steps after the hand-off (the critical phase's start)
    duration_steps: int = 0  # release the dead-man after this many steps; 0 = hold until the episode ends
    stall_steps: int = 15  # stall: the tip descended less than stall_distance over this many control steps ...
    stall_distance: float = 0.0005  # m
    stall_height: float = 0.002  # m, ... while at most this far above the rim (on it, or in the chamfer)
    recover_height: float = FINISH_HEIGHT  # m, stall: lift the tip to this height above the rim, re-align, insert
    gain: float = 0.08  # P gain per step of a held action (the expert's 0.5 is for an action per step)
    n_axes: int = 8  # Joy axes of the emulated gamepad (an Xbox pad: 8)
    n_buttons: int = 11  # Joy buttons of the emulated gamepad (an Xbox pad: 11)
    # noisy: sees the hole through ExpertConfig's default perception bias and noise, as a person at a gamepad does;
    # privileged: the simulator's true pose and no noise (an upper bound on any operator)
    perception: str = "noisy"
    seed: int = 0  # seed of the operator's random generator (its perception errors)

    def validate(self) -> None:
        if self.every < 0 or (self.every and not 0 <= self.offset < self.every):
            self.fail("offset", f"must be in [0, every) with every={self.every} >= 0")
        if self.start_step < 0 or self.duration_steps < 0:
            self.fail("start_step", "start_step and duration_steps must be >= 0")
        self.require_choice("trigger", TRIGGERS)
        self.require_choice("perception", PERCEPTIONS)
        self.require_range("stall_steps", 1, 10_000)
        self.require_range("stall_distance", 0.0, 0.1)
        self.require_range("stall_height", -0.1, 0.1)
        self.require_range("recover_height", 0.0, 0.1)
        self.require_range("gain", 1e-4, 1.0)
        self.require_range("n_axes", 1, 64)
        self.require_range("n_buttons", 1, 64)


class ScriptedHuman:
    """Episode events and sim states in, Joy states out (see the module docstring)."""

    def __init__(self, sim: SimConfig, cfg: ScriptedHumanConfig, mapping: JoyMapping) -> None:
        needed = max([*mapping.axes, -1]) + 1
        if needed > cfg.n_axes:
            raise ValueError(f"ScriptedHumanConfig.n_axes={cfg.n_axes}: the mapping {mapping.device} uses {needed}")
        if mapping.deadman_button >= cfg.n_buttons:
            raise ValueError(
                f"ScriptedHumanConfig.n_buttons={cfg.n_buttons}: the mapping's dead-man is button "
                f"{mapping.deadman_button}"
            )
        self.cfg, self.mapping = cfg, mapping
        self.env = PegInsertEnv(sim.replace(cameras=()))  # a mirror: its physics is never stepped
        expert = ExpertConfig(seed=cfg.seed)
        self.expert = ScriptedTeleop(self.env, expert if cfg.perception == "noisy" else expert.without_errors(),
                                     gain=cfg.gain, on_targets=True)
        self._handoff: dict[int, int] = {}  # episode -> step of its hand-off
        self._ended: set[int] = set()
        self._engaged_episode = -1  # the episode of the current intervention (-1: none)
        self._onset: dict[int, int] = {}  # stall trigger: episode -> step at which the stall was seen
        self._heights: deque[float] = deque(maxlen=cfg.stall_steps + 1)  # m, tip above the rim, latest steps ...
        self._heights_episode = -1  # ... of this episode's critical phase
        self.interventions = 0  # interventions started so far

    def on_event(self, event: EpisodeEvent) -> None:
        if event.event is Event.HANDOFF:
            self._handoff[event.episode_id] = event.step
        elif event.event in _ENDS:
            self._ended.add(event.episode_id)

    def intervenes(self, episode_id: int) -> bool:
        """Whether this episode is one the human takes over in."""
        return bool(self.cfg.every) and episode_id % self.cfg.every == self.cfg.offset

    def on_state(self, state: SimState) -> tuple[np.ndarray, list[int]]:
        """Joy (axes float32[n_axes], buttons) for the scene at `state`: released unless intervening now."""
        axes, buttons = np.zeros(self.cfg.n_axes, np.float32), [0] * self.cfg.n_buttons
        if not self._active(state):
            self._engaged_episode = -1
            return axes, buttons
        apply_state(self.env, state.qpos, state.mocap, state.params)
        if self._engaged_episode != state.episode_id:
            self._engaged_episode = state.episode_id
            # schedule: aligns from where the peg is now; stall: lifts off the rim first
            self.expert.reset(self.cfg.recover_height if self.cfg.trigger == "stall" else None)
            self.interventions += 1
        _, label = self.expert.act()  # float64[4], the intended action (its action noise included)
        axes = joy_axes_for_action(self.mapping, label, self.cfg.n_axes)
        buttons[self.mapping.deadman_button] = 1
        return axes, buttons

    def _active(self, state: SimState) -> bool:
        handoff = self._handoff.get(state.episode_id)
        if handoff is None or state.episode_id in self._ended or not self.intervenes(state.episode_id):
            return False
        onset = handoff + self.cfg.start_step if self.cfg.trigger == "schedule" else self._stall_onset(state)
        since = state.step - onset
        return since >= 0 and (self.cfg.duration_steps == 0 or since < self.cfg.duration_steps)

    def _stall_onset(self, state: SimState) -> int:
        """The step at which this episode's peg was first seen stalled (a large number while it has not)."""
        onset = self._onset.get(state.episode_id)
        if onset is not None:
            return onset
        if self._heights_episode != state.episode_id:
            self._heights_episode = state.episode_id
            self._heights.clear()
        apply_state(self.env, state.qpos, state.mocap, state.params)
        height = float(self.env.tip_offset()[2])
        self._heights.append(height)
        full = len(self._heights) == self._heights.maxlen
        if full and height <= self.cfg.stall_height and self._heights[0] - height < self.cfg.stall_distance:
            self._onset[state.episode_id] = state.step
            return state.step
        return 1 << 62

    def close(self) -> None:
        self.env.close()
