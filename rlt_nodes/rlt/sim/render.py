"""Render the insertion scene from a kinematic state, in a process that does not run the physics.

The sim driver steps MuJoCo without cameras and publishes `render_state(env)`; the sim camera node owns a
`StateRenderer` built from the same `SimConfig`, applies that state and renders each camera. Splitting them puts
physics and rendering on different cores and keeps the camera a separate node, as on a robot. `apply_state` also
gives the scripted human (`rlt.sim.human`) its mirror of the driver's scene.
"""

from __future__ import annotations

import numpy as np

from rlt.sim.config import SimConfig
from rlt.sim.env import PegInsertEnv
from rlt.sim.scene import PEG_BODY


def render_state(env: PegInsertEnv) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(qpos float64[nq], mocap float64[7 * nmocap] (pos, quat per body), params float64[7 + nu]: the peg's pose in
    the hand, then the servo targets)."""
    d, peg = env.data, env.model.body(PEG_BODY)
    mocap = np.concatenate([d.mocap_pos, d.mocap_quat], axis=1).ravel()
    return d.qpos.copy(), mocap, np.concatenate([peg.pos, peg.quat, d.ctrl])


def apply_state(env: PegInsertEnv, qpos: np.ndarray, mocap: np.ndarray, params: np.ndarray) -> None:
    """Put a state from `render_state` into `env` (positions only; its physics is not stepped) and update the
    kinematics, so body, site and camera poses (and the env's privileged queries) reflect it.

    Wrong sizes raise ValueError naming the part. `params` may stop after the peg pose (7 values, as recorded before
    the servo targets were added): the targets are then set equal to the joint positions (no servo lead).
    """
    import mujoco

    m, d = env.model, env.data
    nmocap = d.mocap_pos.shape[0]
    nu = d.ctrl.shape[0]
    for name, arr, sizes in (("qpos", qpos, (m.nq,)), ("mocap", mocap, (7 * nmocap,)), ("params", params, (7, 7 + nu))):
        if np.shape(arr) not in [(size,) for size in sizes]:
            expected = " or ".join(str(size) for size in sizes)
            raise ValueError(f"SimState.{name}: expected {expected} values for this scene, got shape {np.shape(arr)}")
    d.qpos[:] = qpos
    mocap = np.reshape(mocap, (nmocap, 7))
    d.mocap_pos[:], d.mocap_quat[:] = mocap[:, :3], mocap[:, 3:]
    peg = m.body(PEG_BODY).id
    m.body_pos[peg], m.body_quat[peg] = params[:3], params[3:7]
    d.ctrl[:] = params[7:] if len(params) > 7 else d.qpos[:nu]
    mujoco.mj_kinematics(m, d)


class StateRenderer:
    """Cameras of `cfg.cameras` rendered from states produced by `render_state` of an env with the same config."""

    def __init__(self, cfg: SimConfig) -> None:
        if not cfg.cameras:
            raise ValueError("StateRenderer: SimConfig.cameras is empty; nothing to render")
        self.cfg = cfg
        self._env = PegInsertEnv(cfg)  # owns the model, data and renderer; its physics is never stepped
        import mujoco

        self._mujoco = mujoco

    def render(self, qpos: np.ndarray, mocap: np.ndarray, params: np.ndarray) -> dict[str, np.ndarray]:
        """camera -> uint8[H, W, 3] for the given state; wrong sizes raise ValueError naming the part."""
        apply_state(self._env, qpos, mocap, params)
        self._mujoco.mj_camlight(self._env.model, self._env.data)  # camera and light poses, which the renderer reads
        return self._env.render_cameras()

    def close(self) -> None:
        self._env.close()
