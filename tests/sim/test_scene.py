"""The generated MJCF: every preset compiles, steps 1 s warning-free (free and in contact), and has the named parts."""

import numpy as np
import pytest

pytestmark = pytest.mark.sim
mujoco = pytest.importorskip("mujoco")

from rlt.sim.config import PRESETS, SimConfig  # noqa: E402
from rlt.sim.env import PegInsertEnv  # noqa: E402
from rlt.sim.scene import (  # noqa: E402
    CAMERA_NAMES,
    HOLE_SITE,
    JOINT_NAMES,
    PEG_HALF_SIZE,
    RIM_HEIGHT,
    TIP_SITE,
    hole_half_size,
    scene_xml,
)


def _warnings(data) -> dict[int, int]:
    return {i: int(w.number) for i, w in enumerate(data.warning) if w.number}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_scene_steps_one_second_without_warnings(preset):
    cfg = SimConfig(preset=preset, cameras=())
    xml = scene_xml(cfg.hole_clearance, cfg.hole_chamfer, cfg.dt, cfg.image_size, cfg.wrist_fovy)
    model = mujoco.MjModel.from_xml_string(xml)
    assert model.cam_fovy[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "wrist")] == cfg.wrist_fovy
    data = mujoco.MjData(model)
    data.qpos[2] = data.ctrl[2] = 0.15  # hand high above the socket
    mujoco.mj_step(model, data, nstep=round(1.0 / cfg.dt))
    assert _warnings(data) == {}
    assert np.isfinite(data.qpos).all()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_scene_in_contact_for_one_second_without_warnings(preset):
    """Press the peg down near the hole for 1 s of sim time (contacts with chamfer, rim or walls)."""
    with PegInsertEnv(SimConfig(preset=preset, cameras=())) as env:
        env.reset(seed=3, mode="critical")
        for _ in range(20):
            result = env.step(np.array([0.0, 0.0, -0.004, 0.0]))
            if result.terminated:
                break
        assert _warnings(env.data) == {}
        assert env.max_penetration() < 1e-4  # m: far below the 0.25 mm per-side clearance


def test_scene_physics_options_follow_the_design():
    model = mujoco.MjModel.from_xml_string(scene_xml(0.0005, 0.001, 0.002, 96, 25.0))
    assert model.opt.timestep == 0.002
    assert model.opt.integrator == mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    assert model.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC
    np.testing.assert_allclose(model.geom_solref[:, 0], 0.004)
    np.testing.assert_allclose(model.geom_solimp[:, :3], np.tile([0.95, 0.99, 0.001], (model.ngeom, 1)))
    assert model.vis.quality.shadowsize == 0
    assert [model.joint(i).name for i in range(model.njnt)] == list(JOINT_NAMES)
    assert [model.actuator(i).name for i in range(model.nu)] == list(JOINT_NAMES)
    assert [model.camera(i).name for i in range(model.ncam)] == list(CAMERA_NAMES)
    assert all(model.body_gravcomp[model.body(f"gantry_{n}").id] == 1 for n in JOINT_NAMES)
    assert model.site(HOLE_SITE) is not None and model.site(TIP_SITE) is not None


@pytest.mark.parametrize("clearance,chamfer,strips", [(0.0005, 0.001, 4), (0.002, 0.0, 0)])
def test_hole_size_and_chamfer_strips(clearance, chamfer, strips):
    model = mujoco.MjModel.from_xml_string(scene_xml(clearance, chamfer, 0.002, 96, 25.0))
    names = [model.geom(i).name for i in range(model.ngeom)]
    assert sum(n.startswith("socket_chamfer") for n in names) == strips
    hx, hy = hole_half_size(clearance)
    assert (hx - PEG_HALF_SIZE[0], hy - PEG_HALF_SIZE[1]) == pytest.approx((clearance / 2, clearance / 2))
    wall = model.geom("socket_wall_px")
    assert wall.pos[0] - wall.size[0] == pytest.approx(hx)  # inner face of the +x wall is the hole edge
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    assert data.site(HOLE_SITE).xpos[2] == pytest.approx(RIM_HEIGHT)
