"""Joystick intervention: a `sensor_msgs/Joy` state (axes, buttons) -> human action chunks and operator events.

This module owns the meaning of a gamepad's axes and buttons for the stack, free of ROS and of any device:
- `JoyMapping` is the per-device part (which axis drives which action dimension, with which scale and sign; which
  button is the dead-man, hand-off, success, failure and reset). One YAML file per device lives under
  `launch/config/joy/`; the indices are those of `sensor_msgs/Joy` as published by the ROS `joy_linux` / `joy`
  nodes or by our `joystick` node, which uses the same order and sign conventions.
- `Teleop.on_joy` turns one Joy state into what the teleop node publishes: while the dead-man button is held, an
  `ActionChunk` (source HUMAN) of C identical rows, the end-effector delta per control step that the sticks
  command (a constant velocity over the chunk); on the dead-man's press and release INTERVENE_BEGIN / _END events;
  on a press of the other buttons the HANDOFF, SUCCESS, FAILURE or RESET event.
- `joy_axes_for_action` is the inverse (an action -> the stick deflections that command it), which lets a scripted
  "human" in the sim drive the very same mapping.
It must not import rclpy or any message package.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from rlt.config import Config, ConfigError
from rlt.execution import Chunking
from rlt.types import ActionChunk, EpisodeEvent, Event, Source

ACTION_AXES: tuple[str, ...] = ("dx", "dy", "dz", "dyaw")  # the sim's and the robot's end-effector delta axes
# button field of JoyMapping -> the operator event a press of it sends
BUTTON_EVENTS: dict[str, Event] = {
    "handoff_button": Event.HANDOFF,
    "success_button": Event.SUCCESS,
    "failure_button": Event.FAILURE,
    "reset_button": Event.RESET,
}


@dataclasses.dataclass(frozen=True)
class JoyMapping(Config):
    """Which Joy axes and buttons mean what, for one device (launch/config/joy/<device>.yaml).

    axes[j] is the Joy axis index that drives action dimension j (`TeleopConfig.axis_names` order), -1 for none;
    scales[j] is the delta per control step at full deflection (+1.0), in the action's unit (m or rad); a negative
    scale flips the direction. Button fields are Joy button indices, -1 for none.
    """

    device: str = "xbox"  # name shown in logs
    axes: tuple[int, ...] = (1, 0, 4, 3)  # left stick up/down -> dx, left/right -> dy; right stick -> dz, dyaw
    scales: tuple[float, ...] = (0.004, 0.004, 0.004, 0.05)  # m, m, m, rad per step at full deflection
    deadzone: float = 0.1  # |axis| below this reads as 0; the rest is rescaled to start at 0
    deadman_button: int = 4  # held: the human drives (LB)
    handoff_button: int = 5  # pressed: hand control to the RL actor (RB)
    success_button: int = 0  # pressed: mark the episode a success (A)
    failure_button: int = 1  # pressed: mark the episode a failure (B)
    reset_button: int = 7  # pressed: reset the scene (Start)

    def validate(self) -> None:
        if len(self.scales) != len(self.axes):
            self.fail("scales", f"needs one scale per entry of axes ({len(self.axes)})")
        if any(a < -1 for a in self.axes):
            self.fail("axes", "indices must be >= 0, or -1 for an action dimension no axis drives")
        self.require_range("deadzone", 0.0, 0.99)
        if self.deadman_button < 0:
            self.fail("deadman_button", "is required (a Joy button index >= 0): the human drives only while it is held")
        buttons = {name: getattr(self, name) for name in ("deadman_button", *BUTTON_EVENTS)}
        used = [b for b in buttons.values() if b >= 0]
        if len(set(used)) != len(used) or any(b < -1 for b in buttons.values()):
            self.fail("deadman_button", f"button indices must be distinct and >= -1; got {buttons}")


JOY_CONFIG_DIR = Path(__file__).resolve().parents[3] / "launch" / "config" / "joy"


def load_mapping(device: str | Path) -> JoyMapping:
    """Read a per-device mapping YAML (keys: the `JoyMapping` fields); unknown keys are an error naming the file.

    `device` is a file path, or a device name: launch/config/joy/<device>.yaml.
    """
    path = Path(device)
    if path.suffix not in (".yaml", ".yml") and len(path.parts) == 1:
        known = ", ".join(sorted(p.stem for p in JOY_CONFIG_DIR.glob("*.yaml"))) or "none"
        path = JOY_CONFIG_DIR / f"{device}.yaml"
        if not path.is_file():
            raise FileNotFoundError(f"no joystick mapping for device {device!r} in {JOY_CONFIG_DIR} (known: {known})")
    if not path.is_file():
        raise FileNotFoundError(f"joystick mapping {path} does not exist (see launch/config/joy/ for the devices)")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of JoyMapping fields, got {type(values).__name__}")
    return JoyMapping.from_dict(values, source=str(path))


@dataclasses.dataclass(frozen=True)
class TeleopConfig(Config):
    """What the teleop node produces from the mapped Joy state (device independent)."""

    axis_names: tuple[str, ...] = ACTION_AXES  # action dimensions, in the order of JoyMapping.axes / scales
    frame_id: str = "base"  # frame of the end-effector deltas
    # Hz: while the dead-man is held, re-send the latest chunk at least this often, so the actor (which hands control
    # back after human_timeout_s without one) keeps the human in charge of a gamepad that publishes only on change
    rate_hz: float = 20.0
    # s without a Joy message while the dead-man is held: the gamepad or its node is gone, so the human releases
    # (INTERVENE_END) instead of re-sending the last deflection; needs the Joy publisher to repeat an unchanged state
    # faster than this (joystick.autorepeat_hz, joy_linux autorepeat_rate); 0 = never
    joy_timeout_s: float = 0.5

    def validate(self) -> None:
        self.require_positive("rate_hz")
        if self.joy_timeout_s < 0:
            self.fail("joy_timeout_s", "must be >= 0 (0 = never release on silence)")
        if not self.axis_names:
            self.fail("axis_names", "needs at least one action dimension")


@dataclasses.dataclass
class TeleopOutput:
    """What one Joy state produced: the human chunk while the dead-man is held, and operator events."""

    chunk: ActionChunk | None
    events: list[EpisodeEvent]


def axis_value(value: float, deadzone: float) -> float:
    """A stick reading in [-1, 1] with the dead zone removed and the rest rescaled to [-1, 1]."""
    value = float(np.clip(value, -1.0, 1.0))
    magnitude = abs(value)
    if magnitude <= deadzone:
        return 0.0
    return float(np.sign(value) * (magnitude - deadzone) / (1.0 - deadzone))


class Teleop:
    """Joy states in, human chunks and operator events out (see the module docstring)."""

    def __init__(self, mapping: JoyMapping, cfg: TeleopConfig, chunking: Chunking | None = None) -> None:
        """Human chunks have C = `chunking.chunk_len` rows (rl.chunk_len, as every chunk), each the same delta."""
        self.chunk_len = (chunking or Chunking.default()).chunk_len
        if len(mapping.axes) != len(cfg.axis_names):
            raise ConfigError(
                f"JoyMapping.axes has {len(mapping.axes)} entries ({mapping.device}) but TeleopConfig.axis_names "
                f"has {len(cfg.axis_names)} {cfg.axis_names}: they must match one to one"
            )
        self.mapping, self.cfg = mapping, cfg
        self._buttons: tuple[int, ...] = ()  # previous state, for press / release edges
        self._joy_ns = self._joy_wall_ns = 0  # when the latest Joy state came: node clock, wall (steady) clock
        self._next_chunk_id = 0
        self.last_chunk: ActionChunk | None = None  # the chunk of the latest state while the dead-man is held

    @property
    def engaged(self) -> bool:
        """True while the dead-man button is held."""
        return self._pressed(self._buttons, self.mapping.deadman_button)

    def action(self, axes: Sequence[float]) -> np.ndarray:
        """float32[D]: the end-effector delta per control step commanded by the stick deflections `axes`."""
        out = np.zeros(len(self.mapping.axes), np.float32)
        for j, (index, scale) in enumerate(zip(self.mapping.axes, self.mapping.scales, strict=True)):
            if 0 <= index < len(axes):
                out[j] = scale * axis_value(axes[index], self.mapping.deadzone)
        return out

    def on_joy(self, axes: Sequence[float], buttons: Sequence[int], stamp_ns: int,
               wall_ns: int | None = None) -> TeleopOutput:
        """Map one Joy state (axes in [-1, 1], buttons 0/1) at time `stamp_ns`; see the module docstring.

        wall_ns: the steady clock at arrival, when the node clock is sim time (see `expire`)."""
        previous, current = self._buttons, tuple(int(b) for b in buttons)
        self._buttons = current
        self._joy_ns, self._joy_wall_ns = stamp_ns, stamp_ns if wall_ns is None else wall_ns
        deadman = self.mapping.deadman_button
        events: list[EpisodeEvent] = []
        was, now = self._pressed(previous, deadman), self._pressed(current, deadman)
        if now and not was:
            events.append(EpisodeEvent(Event.INTERVENE_BEGIN, detail=f"{self.mapping.device} button {deadman}",
                                       stamp_ns=stamp_ns))
        for name, event in BUTTON_EVENTS.items():
            index = getattr(self.mapping, name)
            if self._pressed(current, index) and not self._pressed(previous, index):
                events.append(EpisodeEvent(event, detail=f"{self.mapping.device} button {index}", stamp_ns=stamp_ns))
        if was and not now:
            events.append(EpisodeEvent(Event.INTERVENE_END, detail=f"{self.mapping.device} button {deadman}",
                                       stamp_ns=stamp_ns))
        self.last_chunk = self._chunk(axes, stamp_ns) if now else None
        return TeleopOutput(self.last_chunk, events)

    def expire(self, stamp_ns: int, wall_ns: int | None = None) -> EpisodeEvent | None:
        """INTERVENE_END (and no more human chunks) when engaged and no Joy came for `joy_timeout_s` before
        `stamp_ns` and, when given, before `wall_ns` too: a dead-man held on a gamepad that went silent must not keep
        the last deflection driving. Both clocks must show the silence: in a lockstep sim, sim time races ahead of a
        pad that repeats on the wall clock, and stands still under a scripted human that publishes per sim step."""
        timeout_ns = int(self.cfg.joy_timeout_s * 1e9)
        if self.last_chunk is None or not timeout_ns or stamp_ns - self._joy_ns <= timeout_ns:
            return None
        if wall_ns is not None and wall_ns - self._joy_wall_ns <= timeout_ns:
            return None
        self.last_chunk, self._buttons = None, ()
        silent = (stamp_ns - self._joy_ns) / 1e9
        return EpisodeEvent(Event.INTERVENE_END, detail=f"no joy for {silent:.2f} s", stamp_ns=stamp_ns)

    def repeat(self, stamp_ns: int) -> ActionChunk | None:
        """The latest chunk again with a new id and stamp (the rate_hz re-send), or None when not engaged."""
        if self.last_chunk is None:
            return None
        self._next_chunk_id += 1
        return dataclasses.replace(self.last_chunk, chunk_id=self._next_chunk_id, stamp_ns=stamp_ns)

    def _chunk(self, axes: Sequence[float], stamp_ns: int) -> ActionChunk:
        self._next_chunk_id += 1
        rows = np.repeat(self.action(axes)[None], self.chunk_len, axis=0)  # float32[C, D]
        return ActionChunk(rows, self.cfg.axis_names, Source.HUMAN, self._next_chunk_id, stamp_ns, self.cfg.frame_id)

    @staticmethod
    def _pressed(buttons: Sequence[int], index: int) -> bool:
        return 0 <= index < len(buttons) and bool(buttons[index])


def joy_axes_for_action(mapping: JoyMapping, action: Sequence[float], n_axes: int) -> np.ndarray:
    """float32[n_axes]: stick deflections that make `Teleop.action` return `action` (clipped to full deflection).

    The inverse of the dead zone is applied, so a deflection maps back to the same delta; values beyond full
    deflection saturate at +-1 (the mapping cannot command more than its scale).
    """
    axes = np.zeros(n_axes, np.float32)
    for j, (index, scale) in enumerate(zip(mapping.axes, mapping.scales, strict=True)):
        if index < 0 or scale == 0:
            continue
        if index >= n_axes:
            raise ValueError(f"JoyMapping.axes[{j}]={index}: the Joy state has only {n_axes} axes")
        wanted = float(np.clip(action[j] / scale, -1.0, 1.0))
        if wanted != 0.0:
            axes[index] = np.sign(wanted) * (abs(wanted) * (1.0 - mapping.deadzone) + mapping.deadzone)
    return axes
