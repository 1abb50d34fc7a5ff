"""The peg-insertion environment: MuJoCo physics, resets, delta actions, camera images and privileged state.

This module owns the episode loop of the simulator (`PegInsertEnv.reset` / `step`), the observation and action
definitions (`Observation`, `AXIS_NAMES`, `PROPRIO_NAMES`) and the task's success test. It is the only module of
`rlt.sim` that imports MuJoCo. Privileged accessors (`tip_offset`, `yaw_error`, ...) serve the scripted expert,
probes and tests; they must never be fed to a policy.

Headless rendering: if `MUJOCO_GL` is unset when this module is imported, it checks once (in a subprocess, about
0.5 s) whether EGL renders here and sets `MUJOCO_GL=egl`, else `osmesa`, before importing MuJoCo. Set `MUJOCO_GL`
yourself to skip the check.
"""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
from types import TracebackType
from typing import Any

import numpy as np

from rlt.sim.config import SimConfig, check_mode
from rlt.sim.scene import (
    HOLE_SITE,
    JOINT_NAMES,
    PEG_BODY,
    PEG_TIP_BELOW_HAND,
    RIM_HEIGHT,
    SOCKET_BODY,
    TIP_SITE,
    hole_half_size,
    scene_xml,
)


def _select_gl_backend() -> None:
    """Set MUJOCO_GL to egl if EGL can render here, else osmesa; an explicit MUJOCO_GL is kept."""
    if os.environ.get("MUJOCO_GL") or "mujoco" in sys.modules:
        return
    probe = "import mujoco; mujoco.Renderer(mujoco.MjModel.from_xml_string('<mujoco/>'), 16, 16).close()"
    try:
        result = subprocess.run(
            [sys.executable, "-c", probe], env={**os.environ, "MUJOCO_GL": "egl"}, capture_output=True, timeout=120
        )
        egl_works = result.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        egl_works = False
    os.environ["MUJOCO_GL"] = "egl" if egl_works else "osmesa"


_select_gl_backend()

import mujoco  # noqa: E402  (MUJOCO_GL must be set before this import)

AXIS_NAMES: tuple[str, ...] = ("dx", "dy", "dz", "dyaw")  # action columns: m, m, m, rad per control step
PROPRIO_NAMES: tuple[str, ...] = (*JOINT_NAMES, *(f"{n}_vel" for n in JOINT_NAMES))  # m, rad, m/s, rad/s
ACTION_DIM = len(AXIS_NAMES)
PROPRIO_DIM = len(PROPRIO_NAMES)
TASK_INSTRUCTION = "insert the peg into the socket"  # the language instruction of this task
SUCCESS_DEPTH = 0.015  # m, the peg tip must be this far below the rim (and inside the hole) for success

# What the cameras draw: every geom a real camera would see, and none of the sites (the hole centre and the peg tip
# are named points for the privileged accessors; MuJoCo's default options would draw them as small spheres).
# Part of the artifact keys (rlt.artifacts): change it and every recorded image is stale.
CAMERA_VIEW = "geoms-only/1"

_TARGET_LEAD = np.array([0.01, 0.01, 0.01, 0.1, 0.1, 0.1])  # m, rad: servo targets stay this close to the joints


@dataclasses.dataclass(frozen=True)
class Observation:
    """What a policy may see at one control step."""

    images: dict[str, np.ndarray]  # camera name -> uint8[H, W, 3], RGB
    proprio: np.ndarray  # float32[12], in PROPRIO_NAMES order: hand pose x, y, z, yaw, pitch, roll, then velocities
    step: int  # control steps since reset


@dataclasses.dataclass(frozen=True)
class StepResult:
    """Outcome of one control step."""

    obs: Observation
    reward: float  # 1.0 on success, else 0.0
    terminated: bool  # success (the only terminal event)
    truncated: bool  # time limit reached without success
    info: dict[str, Any]  # success: bool, duration: control steps so far, max_steps: the episode's limit, mode


class PegInsertEnv:
    """Insert a rectangular peg held by a 6-DoF gantry into a socket with sub-millimetre clearance.

    Actions are per-step deltas (dx, dy, dz [m], dyaw [rad]) added to the servo targets of the world-aligned
    gantry joints; pitch and roll targets are held at 0. Each delta is clamped to the config's per-step bounds and
    each target to within 1 cm / 0.1 rad of its joint, which bounds contact forces. Use as a context manager, or
    call `close()`, to release the renderer.
    """

    action_dim: int = ACTION_DIM
    proprio_dim: int = PROPRIO_DIM

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        xml = scene_xml(cfg.hole_clearance, cfg.hole_chamfer, cfg.dt, cfg.image_size, cfg.wrist_fovy)
        self.model = mujoco.MjModel.from_xml_string(xml)
        self.data = mujoco.MjData(self.model)
        self._renderer = self._make_renderer() if cfg.cameras else None
        self._view = camera_view_option()
        self._hole = self.model.site(HOLE_SITE).id
        self._tip = self.model.site(TIP_SITE).id
        self._peg = self.model.body(PEG_BODY).id
        self._socket = int(self.model.body(SOCKET_BODY).mocapid[0])
        self._peg_home = self.model.body_pos[self._peg].copy()  # float64[3], in-hand peg position without offset
        self._hole_half = hole_half_size(cfg.hole_clearance)
        self._step_bound = cfg.action_bounds  # float64[4]
        self._t = 0
        self._max_steps = 0
        self._mode = ""
        self._done = True
        self._penetration = 0.0

    def _make_renderer(self) -> mujoco.Renderer:
        size = self.cfg.image_size
        try:
            return mujoco.Renderer(self.model, size, size)
        except Exception as err:
            raise RuntimeError(
                f"cannot create a {size}x{size} MuJoCo renderer with MUJOCO_GL={os.environ.get('MUJOCO_GL')!r}: "
                f"{err}. Headless rendering needs EGL (libegl1) or OSMesa (libosmesa6, MUJOCO_GL=osmesa); "
                "use SimConfig(cameras=()) to run without images."
            ) from err

    # ------------------------------------------------------------------ episode loop
    def reset(self, seed: int, mode: str = "full") -> Observation:
        """Start an episode whose randomization is fully determined by `seed`.

        mode "full" starts with the peg high above a randomly placed socket; "critical" starts in the critical
        phase, the peg tip 5-15 mm above the rim and a few mm off the hole axis (see SimConfig).
        """
        check_mode(mode)
        cfg, m, d = self.cfg, self.model, self.data
        rng = np.random.default_rng(seed)

        def uniform(half_width: float, size: int | None = None) -> Any:
            return rng.uniform(-half_width, half_width, size)

        mujoco.mj_resetData(m, d)
        socket_yaw = uniform(cfg.socket_yaw_range)
        d.mocap_pos[self._socket] = [*uniform(cfg.socket_xy_range, 2), RIM_HEIGHT]
        d.mocap_quat[self._socket] = _yaw_quat(socket_yaw)
        peg_yaw_in_hand = uniform(cfg.peg_offset_yaw_range)
        m.body_pos[self._peg] = self._peg_home
        m.body_pos[self._peg, :2] += uniform(cfg.peg_offset_xy_range, 2)
        m.body_quat[self._peg] = _yaw_quat(peg_yaw_in_hand)
        if mode == "full":
            hand_xy = uniform(cfg.hand_xy_range, 2)
            tip_z = RIM_HEIGHT + cfg.start_height
            d.qpos[: len(JOINT_NAMES)] = [*hand_xy, tip_z + PEG_TIP_BELOW_HAND, uniform(cfg.hand_yaw_range), 0, 0]
            mujoco.mj_forward(m, d)
        else:
            tip_in_hole = [
                *uniform(cfg.critical_xy_range, 2),
                rng.uniform(cfg.critical_height_min, cfg.critical_height_max),
            ]
            hand_yaw = socket_yaw + uniform(cfg.critical_yaw_range) - peg_yaw_in_hand
            d.qpos[: len(JOINT_NAMES)] = [0, 0, 0, hand_yaw, 0, 0]
            mujoco.mj_forward(m, d)
            # The slides come first in the kinematic chain, so shifting them moves the tip by the same amount.
            hole_rot = d.site_xmat[self._hole].reshape(3, 3)
            d.qpos[:3] += d.site_xpos[self._hole] + hole_rot @ tip_in_hole - d.site_xpos[self._tip]
            mujoco.mj_forward(m, d)
        d.ctrl[:] = d.qpos[: len(JOINT_NAMES)]
        self._t, self._mode, self._done, self._penetration = 0, mode, False, 0.0
        self._max_steps = cfg.max_steps(mode)
        return self._observe()

    def step(self, action: np.ndarray) -> StepResult:
        """Apply one delta action (float[4], AXIS_NAMES order) for one control period."""
        if self._done:
            raise RuntimeError("the episode is over (terminated or truncated) or was never started; call reset()")
        delta = np.asarray(action, dtype=np.float64)
        if delta.shape != (ACTION_DIM,):
            raise ValueError(f"action must have shape ({ACTION_DIM},) = {AXIS_NAMES}, got shape {delta.shape}")
        if not np.isfinite(delta).all():
            raise ValueError(f"action must be finite, got {delta.tolist()} for {AXIS_NAMES}")
        d = self.data
        target = d.ctrl.copy()  # float64[6], servo targets in JOINT_NAMES order
        target[:ACTION_DIM] += np.clip(delta, -self._step_bound, self._step_bound)
        target[ACTION_DIM:] = 0.0  # pitch and roll held level
        joints = d.qpos[: len(JOINT_NAMES)]
        d.ctrl[:] = np.clip(target, joints - _TARGET_LEAD, joints + _TARGET_LEAD)
        self._physics(self.cfg.substeps)
        self._t += 1
        success = self.success()
        truncated = not success and self._t >= self._max_steps
        self._done = success or truncated
        info = {"success": success, "duration": self._t, "max_steps": self._max_steps, "mode": self._mode}
        return StepResult(self._observe(), float(success), success, truncated, info)

    def drive(self, target: np.ndarray, substeps: int) -> None:
        """Run `substeps` physics steps towards absolute servo targets (float[6], m and rad, JOINT_NAMES order), each
        kept within 1 cm / 0.1 rad of its joint as `step` keeps them. For a position-controlled arm
        (`rlt.sim.arm.SimArm`): no episode bookkeeping (step count, time limit, success); the caller judges."""
        if not self._mode:
            raise RuntimeError("drive() needs a scene: call reset() first")
        target = np.asarray(target, dtype=np.float64)
        if target.shape != (len(JOINT_NAMES),) or not np.isfinite(target).all():
            raise ValueError(f"target must be {len(JOINT_NAMES)} finite values ({JOINT_NAMES}), got {target.tolist()}")
        if substeps < 1:
            raise ValueError(f"substeps={substeps}: must be >= 1")
        joints = self.data.qpos[: len(JOINT_NAMES)]
        self.data.ctrl[:] = np.clip(target, joints - _TARGET_LEAD, joints + _TARGET_LEAD)
        self._physics(substeps)

    def _physics(self, substeps: int) -> None:
        """`substeps` MuJoCo steps, tracking the deepest contact penetration."""
        m, d = self.model, self.data
        for _ in range(substeps):
            mujoco.mj_step(m, d)
            if d.ncon:
                self._penetration = max(self._penetration, -float(d.contact.dist.min()))

    def extend(self, steps: int) -> None:
        """Give the current episode `steps` more control steps, also after it was truncated (an operator who takes
        over a failed attempt to finish it); raises if it succeeded or was never started."""
        if steps < 1:
            raise ValueError(f"steps={steps}: must be >= 1")
        if not self._mode or self.success():
            raise RuntimeError("extend() continues a started episode that has not succeeded; call reset() first")
        self._max_steps = self._t + steps
        self._done = False

    def _observe(self) -> Observation:
        d = self.data
        proprio = np.concatenate([d.qpos[: len(JOINT_NAMES)], d.qvel[: len(JOINT_NAMES)]]).astype(np.float32)
        return Observation(self.render_cameras(), proprio, self._t)

    def render_cameras(self) -> dict[str, np.ndarray]:
        """camera -> uint8[H, W, 3] of the current state, for every camera in the config ({} if none)."""
        if not self.cfg.cameras:
            return {}
        if self._renderer is None:
            raise RuntimeError("this PegInsertEnv was closed; create a new one")
        images = {}
        for camera in self.cfg.cameras:
            self._renderer.update_scene(self.data, camera=camera, scene_option=self._view)
            images[camera] = self._renderer.render()  # a fresh array
        return images

    def servo_lead(self) -> np.ndarray:
        """float64[6]: servo targets minus joint positions (m, rad), in JOINT_NAMES order; a real arm knows it too."""
        return self.data.ctrl - self.data.qpos[: len(JOINT_NAMES)]

    @property
    def max_steps(self) -> int:
        """Control steps before the current episode is truncated (0 before the first reset)."""
        return self._max_steps

    # ------------------------------------------------------------------ privileged state (never for policies)
    def tip_offset(self) -> np.ndarray:
        """float64[3]: peg tip position in the hole frame, m (z < 0: below the rim, inside the socket)."""
        d = self.data
        hole_rot = d.site_xmat[self._hole].reshape(3, 3)
        return hole_rot.T @ (d.site_xpos[self._tip] - d.site_xpos[self._hole])

    def yaw_error(self) -> float:
        """Peg yaw relative to the hole in rad, wrapped to [-pi/2, pi/2) since the peg is symmetric under pi."""
        d = self.data
        relative = d.site_xmat[self._hole].reshape(3, 3).T @ d.xmat[self._peg].reshape(3, 3)
        return _wrap_half_turn(math.atan2(relative[1, 0], relative[0, 0]))

    def hole_yaw(self) -> float:
        """World yaw of the hole frame in rad."""
        rot = self.data.site_xmat[self._hole]
        return math.atan2(rot[3], rot[0])

    def max_penetration(self) -> float:
        """Deepest contact penetration (m, >= 0) seen at any physics step since reset."""
        return self._penetration

    def success(self) -> bool:
        """Tip more than SUCCESS_DEPTH below the rim, with its centre inside the hole's cross-section."""
        x, y, z = self.tip_offset()
        return bool(z < -SUCCESS_DEPTH and abs(x) < self._hole_half[0] and abs(y) < self._hole_half[1])

    def in_critical_phase(self) -> bool:
        """Tip at most `handoff_height` above the rim and within `handoff_xy_radius` of the hole axis."""
        x, y, z = self.tip_offset()
        return bool(z <= self.cfg.handoff_height and math.hypot(x, y) <= self.cfg.handoff_xy_radius)

    # ------------------------------------------------------------------ resources
    def close(self) -> None:
        """Release the renderer (idempotent)."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __enter__(self) -> PegInsertEnv:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def camera_view_option() -> mujoco.MjvOption:
    """MuJoCo's visual options for camera images (CAMERA_VIEW): the defaults with every site group hidden."""
    option = mujoco.MjvOption()
    option.sitegroup[:] = 0
    return option


def _yaw_quat(yaw: float) -> np.ndarray:
    """float64[4]: unit quaternion (w, x, y, z) of a rotation by `yaw` rad about +z."""
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


def _wrap_half_turn(angle: float) -> float:
    """`angle` modulo pi, in [-pi/2, pi/2)."""
    return (angle + math.pi / 2) % math.pi - math.pi / 2
