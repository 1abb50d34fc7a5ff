"""A scripted "human" for the sim: the privileged expert driving the joystick, so intervention is tested end to end.

This module owns when the scripted human takes over and what it does with the sticks. It follows the driver's
`sim/state` with a mirror of the scene (`rlt.sim.render.apply_state`) and the episode events; in the chosen
episodes (`every`, `offset`) it holds the dead-man button from `start_step` steps after the hand-off for
`duration_steps` steps, and deflects the sticks so that the teleop mapping (`rlt.teleop.Teleop`, same per-device
`JoyMapping`) commands the scripted teleoperator's action (`rlt.sim.expert.ScriptedTeleop`). Its output is a Joy
state (axes, buttons), exactly what a gamepad would give; everything after that is the real teleop path.
The expert's P gain assumes a new action every control step; a human chunk holds one action for a whole chunk, so
the gain here is lower (`gain`). Servo targets are not in `sim/state`; the mirror assumes no servo lead.
It must not import rclpy or any message package.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rlt.config import Config
from rlt.sim.config import ExpertConfig, SimConfig
from rlt.sim.env import PegInsertEnv
from rlt.sim.expert import ScriptedTeleop
from rlt.sim.render import apply_state
from rlt.teleop import JoyMapping, joy_axes_for_action
from rlt.types import EpisodeEvent, Event, SimState

_ENDS = (Event.SUCCESS, Event.FAILURE, Event.TIMEOUT, Event.RESET)


@dataclasses.dataclass(frozen=True)
class ScriptedHumanConfig(Config):
    """When the scripted human intervenes and how its gamepad looks."""

    every: int = 2  # intervene in episodes whose id % every == offset; 0 = never
    offset: int = 0
    start_step: int = 2  # take over this many control steps after the hand-off (the critical phase's start)
    duration_steps: int = 20  # release the dead-man after this many steps; 0 = hold until the episode ends
    gain: float = 0.08  # P gain per step of a held action (the expert's 0.5 is for an action per step)
    n_axes: int = 8  # Joy axes of the emulated gamepad (an Xbox pad: 8)
    n_buttons: int = 11  # Joy buttons of the emulated gamepad (an Xbox pad: 11)
    seed: int = 0  # seed of the expert's random generator (its noises are zero here: a careful human)

    def validate(self) -> None:
        if self.every < 0 or (self.every and not 0 <= self.offset < self.every):
            self.fail("offset", f"must be in [0, every) with every={self.every} >= 0")
        if self.start_step < 0 or self.duration_steps < 0:
            self.fail("start_step", "start_step and duration_steps must be >= 0")
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
        self.expert = ScriptedTeleop(self.env, ExpertConfig(seed=cfg.seed).without_errors(), gain=cfg.gain)
        self._handoff: dict[int, int] = {}  # episode -> step of its hand-off
        self._ended: set[int] = set()
        self._engaged_episode = -1  # the episode of the current intervention (-1: none)
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
            self.expert.reset()  # aligns from where the peg is now
            self.interventions += 1
        _, label = self.expert.act()  # float64[4], the intended action (no noise here)
        axes = joy_axes_for_action(self.mapping, label, self.cfg.n_axes)
        buttons[self.mapping.deadman_button] = 1
        return axes, buttons

    def _active(self, state: SimState) -> bool:
        handoff = self._handoff.get(state.episode_id)
        if handoff is None or state.episode_id in self._ended or not self.intervenes(state.episode_id):
            return False
        since = state.step - handoff - self.cfg.start_step
        return since >= 0 and (self.cfg.duration_steps == 0 or since < self.cfg.duration_steps)

    def close(self) -> None:
        self.env.close()
