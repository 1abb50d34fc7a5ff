"""Safety limits on every joint target the chunk executor commands: pure functions of (target, action, limits).

`SafetyFilter.step(q, row, mode)` turns one action row into the next commanded joint target, in this order:

1. non-finite rows are refused (`UnsafeAction`): the caller holds position;
2. end-effector rows (dx, dy, dz, dyaw): each axis is clamped to `max_ee_step`, then to the workspace box (an axis
   already outside the box may only move back toward it), then mapped to a joint step through the kinematics;
   joint rows are joint steps already;
3. the joint step is scaled down as a whole (its direction kept) so that no joint exceeds `max_joint_velocity`;
4. the target is clamped to the joint position limits (a joint already outside may only move back);
5. the step is shortened (bisection along it) until the end-effector pose of the new target violates the workspace
   box no more than the current one does: this catches joint-space rows and nonlinear kinematics.

Limits apply to the commanded targets, which is what the controller tracks; the executor separately holds when the
measured joints drift from the targets by more than `max_tracking_error` (a collision, a controller that does not
follow). Nothing here knows about ROS or time beyond the control period.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rlt.config import Config, ConfigError
from rlt.robot.kinematics import EE_AXES, Kinematics


class UnsafeAction(ValueError):
    """An action row that cannot be made safe (non-finite): the executor holds position instead."""


@dataclasses.dataclass(frozen=True)
class SafetyConfig(Config):
    """Limits every commanded joint target obeys, whatever the chunk says (m, rad, s; robot base frame)."""

    max_ee_step: tuple[float, ...] = (0.004, 0.004, 0.004, 0.05)  # |dx|, |dy|, |dz| m and |dyaw| rad per step
    workspace_min: tuple[float, ...] = (-0.3, -0.3, 0.0, -3.2)  # EE box lower corner: x, y, z (m), yaw (rad)
    workspace_max: tuple[float, ...] = (0.3, 0.3, 0.3, 3.2)  # EE box upper corner
    max_joint_velocity: tuple[float, ...] = (0.5,)  # rad/s or m/s per joint; one value applies to every joint
    joint_min: tuple[float, ...] = ()  # per-joint lower position limits (rad or m); empty: none
    joint_max: tuple[float, ...] = ()  # per-joint upper position limits; empty: none
    max_tracking_error: float = 0.2  # hold when a measured joint is this far from its target (rad or m); 0 = off

    def validate(self) -> None:
        n = len(EE_AXES)
        for name in ("max_ee_step", "workspace_min", "workspace_max"):
            if len(getattr(self, name)) != n:
                self.fail(name, f"needs {n} values, one per {EE_AXES}")
        if any(v <= 0 for v in self.max_ee_step):
            self.fail("max_ee_step", "every value must be > 0")
        if any(lo >= hi for lo, hi in zip(self.workspace_min, self.workspace_max, strict=True)):
            self.fail("workspace_min", f"must be below workspace_max={self.workspace_max} on every axis")
        if not self.max_joint_velocity or any(v <= 0 for v in self.max_joint_velocity):
            self.fail("max_joint_velocity", "needs one or N values, all > 0")
        if len(self.joint_min) != len(self.joint_max):
            self.fail("joint_min", f"needs as many values as joint_max={self.joint_max}")
        if any(lo >= hi for lo, hi in zip(self.joint_min, self.joint_max, strict=True)):
            self.fail("joint_min", f"must be below joint_max={self.joint_max} for every joint")
        if self.max_tracking_error < 0:
            self.fail("max_tracking_error", "must be >= 0 (0 = off)")

    def check_joints(self, joint_names: tuple[str, ...]) -> None:
        """Per-joint fields must have one value per joint (max_joint_velocity may have one for all)."""
        n = len(joint_names)
        if len(self.max_joint_velocity) not in (1, n):
            self.fail("max_joint_velocity", f"needs 1 or {n} values for joint_names={joint_names}")
        if self.joint_min and len(self.joint_min) != n:
            self.fail("joint_min", f"needs {n} values for joint_names={joint_names} (or none)")


@dataclasses.dataclass
class SafeStep:
    """One filtered step: the new target and which limits changed the request."""

    target: np.ndarray  # float64[N] joint positions to command
    limited: tuple[str, ...]  # names of the limits that acted: ee_step, workspace, velocity, joint_limit


class SafetyFilter:
    """Applies `SafetyConfig` to one action row at a time (see the module docstring)."""

    def __init__(self, cfg: SafetyConfig, kinematics: Kinematics, control_hz: float) -> None:
        cfg.check_joints(kinematics.joint_names)
        if control_hz <= 0:
            raise ConfigError(f"SafetyFilter.control_hz={control_hz!r}: must be > 0")
        n = len(kinematics.joint_names)
        self.cfg, self.kin, self.dt = cfg, kinematics, 1.0 / control_hz
        self.max_ee_step = np.asarray(cfg.max_ee_step, np.float64)  # float64[4]
        self.box_lo = np.asarray(cfg.workspace_min, np.float64)  # float64[4]
        self.box_hi = np.asarray(cfg.workspace_max, np.float64)
        self.max_joint_step = np.broadcast_to(np.asarray(cfg.max_joint_velocity, np.float64) * self.dt, (n,)).copy()
        self.joint_lo = np.asarray(cfg.joint_min, np.float64) if cfg.joint_min else np.full(n, -np.inf)
        self.joint_hi = np.asarray(cfg.joint_max, np.float64) if cfg.joint_max else np.full(n, np.inf)

    def violation(self, q: np.ndarray) -> float:
        """How far (sum over axes, m + rad) the EE pose of q lies outside the workspace box; 0 inside."""
        p = self.kin.forward(q)
        return float(np.sum(np.maximum(self.box_lo - p, 0.0) + np.maximum(p - self.box_hi, 0.0)))

    def step(self, q: np.ndarray, row: np.ndarray, mode: str) -> SafeStep:
        """Next target from the current target q float64[N] and one action row (mode "ee": float[4]; "joint": [N])."""
        q = np.asarray(q, np.float64)
        row = np.asarray(row, np.float64)
        if not np.isfinite(row).all():
            raise UnsafeAction(f"action row {row.tolist()} is not finite")
        if not np.isfinite(q).all():
            raise UnsafeAction(f"current target {q.tolist()} is not finite")
        limited: list[str] = []
        if mode == "ee":
            dp = np.clip(row, -self.max_ee_step, self.max_ee_step)
            if not np.array_equal(dp, row):
                limited.append("ee_step")
            p = self.kin.forward(q)
            inside = np.clip(dp, np.minimum(self.box_lo - p, 0.0), np.maximum(self.box_hi - p, 0.0))
            if not np.array_equal(inside, dp):
                limited.append("workspace")
            dq = self.kin.ee_to_joint_delta(q, inside)
        elif mode == "joint":
            dq = row
        else:
            raise ValueError(f"SafetyFilter.step: mode must be 'ee' or 'joint', got {mode!r}")
        if not np.isfinite(dq).all():
            raise UnsafeAction(f"joint step {dq.tolist()} is not finite (kinematics)")
        ratio = np.max(np.abs(dq) / self.max_joint_step)
        if ratio > 1.0:
            dq = dq / ratio
            limited.append("velocity")
        target = np.clip(q + dq, np.minimum(self.joint_lo, q), np.maximum(self.joint_hi, q))
        if not np.array_equal(target, q + dq):
            limited.append("joint_limit")
        target = self._inside_box(q, target, limited)
        return SafeStep(target, tuple(dict.fromkeys(limited)))

    def _inside_box(self, q: np.ndarray, target: np.ndarray, limited: list[str]) -> np.ndarray:
        """Shorten q -> target until its pose violates the box no more than q's (bisection, 30 halvings)."""
        allowed = self.violation(q)  # no slack: repeated steps must not creep outward
        if self.violation(target) <= allowed:
            return target
        lo, hi = 0.0, 1.0
        for _ in range(30):
            mid = 0.5 * (lo + hi)
            if self.violation(q + mid * (target - q)) <= allowed:
                lo = mid
            else:
                hi = mid
        limited.append("workspace")
        return q + lo * (target - q)
