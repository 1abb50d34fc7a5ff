"""Configs of the peg-insertion simulator (`SimConfig`) and of its scripted teleoperator (`ExpertConfig`).

This module owns the simulator's tunables and their defaults, the named difficulty presets and their lookup.
Lengths are in m, angles in rad, times in s. It must not import MuJoCo, rclpy or any message package.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from rlt.config import Config, ConfigError
from rlt.sim.scene import CAMERA_NAMES, PEG_HALF_SIZE

FROM_PRESET = -1.0  # sentinel for `SimConfig.clearance` / `SimConfig.chamfer`: take the value from the preset
MODES: tuple[str, ...] = ("full", "critical")  # episode start: far above the socket, or near the hole (critical phase)


@dataclasses.dataclass(frozen=True)
class Preset:
    """Socket geometry of a difficulty level."""

    clearance: float  # m, total (hole width minus peg width) per axis
    chamfer: float  # m, 45-degree lead-in size; 0 = sharp edge
    description: str


PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        "easy": Preset(0.002, 0.001, "2 mm clearance, 1 mm chamfer"),
        "main": Preset(0.0005, 0.001, "0.5 mm clearance, 1 mm chamfer"),
        "hard": Preset(0.0005, 0.0, "0.5 mm clearance, no chamfer"),
    }
)


def get_preset(name: str) -> Preset:
    """The preset called `name`; raises `ConfigError` listing the presets (and the closest match) otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; {_preset_hint(name)}") from None


def _preset_hint(name: str) -> str:
    close = difflib.get_close_matches(name, PRESETS, n=1)
    did_you_mean = f"did you mean {close[0]!r}? " if close else ""
    return f"{did_you_mean}expected one of {', '.join(PRESETS)}"


@dataclasses.dataclass(frozen=True)
class SimConfig(Config):
    """Peg-in-hole simulator: scene geometry, physics and control rates, episode limits, reset randomization.

    Reset ranges are half-widths of uniform distributions (value ~ U(-range, +range)).
    """

    preset: str = "main"  # difficulty preset, one of PRESETS
    clearance: float = FROM_PRESET  # m, total hole clearance per axis; -1 = from preset
    chamfer: float = FROM_PRESET  # m, lead-in chamfer size; 0 = none; -1 = from preset

    dt: float = 0.002  # s, physics time step
    control_hz: int = 20  # control steps per second; 1 / (control_hz * dt) must be an integer
    image_size: int = 96  # px, square camera images
    cameras: tuple[str, ...] = CAMERA_NAMES  # rendered cameras, a subset of scene.CAMERA_NAMES; () = no images
    wrist_fovy: float = 50.0  # deg, vertical field of view of the wrist camera (smaller = finer, about 0.7 mm/px at 50)

    episode_seconds: float = 8.0  # s, time limit of a full episode (approach + insertion)
    critical_episode_seconds: float = 5.0  # s, time limit of a critical-phase episode (starts near the hole)

    max_translation_step: float = 0.004  # m, per-step clamp of dx, dy, dz
    max_rotation_step: float = 0.05  # rad, per-step clamp of dyaw

    socket_xy_range: float = 0.03  # m, socket position around the origin
    socket_yaw_range: float = math.radians(20)  # rad
    hand_xy_range: float = 0.02  # m, hand start position around the origin (full mode)
    hand_yaw_range: float = math.radians(15)  # rad
    start_height: float = 0.076  # m, peg tip above the rim at the start of a full episode
    peg_offset_xy_range: float = 0.002  # m, in-hand peg position offset (invisible to proprio)
    peg_offset_yaw_range: float = math.radians(5)  # rad, in-hand peg yaw offset

    critical_height_min: float = 0.005  # m, tip above the rim at the start of a critical episode
    critical_height_max: float = 0.015  # m
    critical_xy_range: float = 0.003  # m, tip offset from the hole axis, per hole axis
    critical_yaw_range: float = math.radians(3)  # rad, peg yaw error at the start of a critical episode

    handoff_height: float = 0.015  # m, the critical phase is: tip at most this far above the rim ...
    handoff_xy_radius: float = 0.005  # m, ... and at most this far from the hole axis

    def validate(self) -> None:
        if self.preset not in PRESETS:
            self.fail("preset", _preset_hint(self.preset))
        for name in ("clearance", "chamfer"):
            value = getattr(self, name)
            if value != FROM_PRESET and not 0 <= value <= 0.01:
                self.fail(name, f"must be in [0, 0.01] m, or {FROM_PRESET} for the preset's value")
        if self.hole_clearance <= 0:
            self.fail("clearance", "must be > 0: the peg cannot enter a hole of its own size")
        self.require_range("dt", 1e-4, 0.01)
        self.require_range("control_hz", 1, 500)
        substeps = 1 / (self.control_hz * self.dt)
        if abs(substeps - round(substeps)) > 1e-6:
            self.fail(
                "control_hz",
                f"1 / (control_hz * dt) = {substeps:.4g} physics steps per control step; must be an integer",
            )
        self.require_range("image_size", 16, 1024)
        self.require_range("wrist_fovy", 5.0, 120.0)
        for camera in self.cameras:
            if camera not in CAMERA_NAMES:
                self.fail("cameras", f"unknown camera {camera!r}; expected names from {', '.join(CAMERA_NAMES)}")
        if len(set(self.cameras)) != len(self.cameras):
            self.fail("cameras", "lists a camera twice")
        self.require_positive(
            "episode_seconds", "critical_episode_seconds", "max_translation_step", "max_rotation_step", "start_height"
        )
        for name in (
            "socket_xy_range",
            "socket_yaw_range",
            "hand_xy_range",
            "hand_yaw_range",
            "peg_offset_xy_range",
            "peg_offset_yaw_range",
            "critical_xy_range",
            "critical_yaw_range",
        ):
            self.require_range(name, 0.0, 1.0)
        self.require_range("critical_height_min", 0.001, 0.1)
        if self.critical_height_max < self.critical_height_min:
            self.fail("critical_height_max", f"must be >= critical_height_min={self.critical_height_min}")
        if self.handoff_height < self.critical_height_max:
            self.fail(
                "handoff_height",
                f"must be >= critical_height_max={self.critical_height_max}, "
                "or critical episodes would start outside the critical phase",
            )
        if self.handoff_xy_radius < self.critical_xy_range * math.sqrt(2):
            self.fail(
                "handoff_xy_radius",
                f"must be >= sqrt(2) * critical_xy_range={self.critical_xy_range}, "
                "or critical episodes would start outside the critical phase",
            )
        if self.start_height <= self.handoff_height:
            self.fail(
                "start_height",
                f"must be > handoff_height={self.handoff_height}: full episodes start before the critical phase",
            )

    @property
    def hole_clearance(self) -> float:
        """Total clearance in m: the override if given, else the preset's."""
        return PRESETS[self.preset].clearance if self.clearance == FROM_PRESET else self.clearance

    @property
    def hole_chamfer(self) -> float:
        """Chamfer size in m: the override if given, else the preset's."""
        return PRESETS[self.preset].chamfer if self.chamfer == FROM_PRESET else self.chamfer

    @property
    def action_bounds(self) -> np.ndarray:
        """float64[4]: per-step clamp of (dx, dy, dz, dyaw), m and rad."""
        return np.array([self.max_translation_step] * 3 + [self.max_rotation_step])

    @property
    def substeps(self) -> int:
        """Physics steps per control step."""
        return round(1 / (self.control_hz * self.dt))

    def max_steps(self, mode: str) -> int:
        """Control steps before truncation in `mode` ("full" or "critical")."""
        check_mode(mode)
        return round((self.episode_seconds if mode == "full" else self.critical_episode_seconds) * self.control_hz)


def check_mode(mode: str) -> None:
    """Raise `ValueError` unless `mode` is one of MODES."""
    if mode not in MODES:
        raise ValueError(f"unknown episode mode {mode!r}; expected one of {', '.join(MODES)}")


@dataclasses.dataclass(frozen=True)
class ExpertConfig(Config):
    """Scripted teleoperator quality knobs. All noises are zero-mean Gaussians with the given standard deviation.

    The defaults are a person at a gamepad who sees the scene through a camera: the perception bias is drawn once
    per episode (misjudging where the hole is) and the perception noise every step (the judgement jitters from frame
    to frame); the action noise is drawn every step and is part of the recorded label; the DART noise is added to the
    executed action only, so the recorded label stays the teleoperator's intended command.
    """

    bias_xy_sigma: float = 0.0005  # m, per-episode error on the perceived hole position, per axis
    bias_yaw_sigma: float = math.radians(1)  # rad, per-episode error on the perceived hole yaw
    perception_noise_xy_sigma: float = 0.0002  # m, per-step error on the perceived hole position, per axis
    perception_noise_yaw_sigma: float = math.radians(0.5)  # rad, per-step error on the perceived hole yaw
    action_noise_xyz_sigma: float = 0.0001  # m, per-step noise on dx, dy, dz
    action_noise_yaw_sigma: float = 0.001  # rad, per-step noise on dyaw
    dart_xyz_sigma: float = 0.0  # m, per-step execution noise on dx, dy, dz (not in the label)
    dart_yaw_sigma: float = 0.0  # rad, per-step execution noise on dyaw (not in the label)
    seed: int = 0  # seed of the teleoperator's random generator

    def validate(self) -> None:
        for name in ("bias_xy_sigma", "perception_noise_xy_sigma", "action_noise_xyz_sigma", "dart_xyz_sigma"):
            self.require_range(name, 0.0, PEG_HALF_SIZE[0] * 2)
        for name in ("bias_yaw_sigma", "perception_noise_yaw_sigma", "action_noise_yaw_sigma", "dart_yaw_sigma"):
            self.require_range(name, 0.0, math.pi / 4)
        self.require_range("seed", 0, 2**63 - 1)

    def without_errors(self) -> ExpertConfig:
        """This teleoperator with no perception error and no noise at all: the true pose (privileged)."""
        return self.replace(bias_xy_sigma=0.0, bias_yaw_sigma=0.0, perception_noise_xy_sigma=0.0,
                            perception_noise_yaw_sigma=0.0, action_noise_xyz_sigma=0.0,
                            action_noise_yaw_sigma=0.0, dart_xyz_sigma=0.0, dart_yaw_sigma=0.0)


@dataclasses.dataclass(frozen=True)
class RolloutConfig(Config):
    """Base-policy rollouts recorded as a dataset (`rlt.sim.demos.record_rollouts`): the states the RL stage starts
    from, labelled in hindsight by where successful episodes ended (the RL token's goal entries train on them).

    Each step executes the policy's action plus Gaussian noise (the RL actor's exploration, σ 0.07 of the sim
    session's `rl.action_scale`), so the data also covers the states an exploring actor visits.
    """

    episodes: int = 600  # episodes to record (about half succeed with the default base VLA)
    mode: str = "critical"  # episode start, as in the RL session
    execute_steps: int = 10  # actions executed per policy query (the session's chunk length C)
    noise_xyz_sigma: float = 0.0001  # m, per-step execution noise on dx, dy (dz gets 3x: the actor's z bound)
    noise_yaw_sigma: float = 0.0014  # rad, per-step execution noise on dyaw
    seed: int = 8  # env seeds demo_seed(seed, k); the demo recipe uses 6 and 7
    # control steps an operator (the scripted teleop with a person's perception, ExpertConfig defaults) gets to finish
    # an episode the policy
    # left at its time limit: its final pose then labels the failed attempt too; 0 = failed attempts stay unlabelled
    finish_steps: int = 100

    def validate(self) -> None:
        self.require_positive("episodes", "execute_steps")
        self.require_range("finish_steps", 0, 1 << 20)
        self.require_choice("mode", MODES)
        self.require_range("noise_xyz_sigma", 0.0, PEG_HALF_SIZE[0] * 2)
        self.require_range("noise_yaw_sigma", 0.0, math.pi / 4)
        self.require_range("seed", 0, 2**63 - 1)

    @property
    def noise(self) -> tuple[float, float, float, float]:
        """Per-step execution noise std of (dx, dy, dz, dyaw), m and rad."""
        return (self.noise_xyz_sigma, self.noise_xyz_sigma, 3 * self.noise_xyz_sigma, self.noise_yaw_sigma)
