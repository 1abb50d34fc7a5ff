"""SafetyFilter under adversarial rows: every commanded target respects step, velocity, joint and workspace limits."""

import numpy as np
import pytest

from rlt.config import ConfigError
from rlt.robot.executor import SIM_EE_MAP, SIM_JOINTS
from rlt.robot.kinematics import Kinematics, LinearKinematics, load_kinematics
from rlt.robot.safety import SafetyConfig, SafetyFilter, UnsafeAction

HZ = 20.0
LIMITS = SafetyConfig(
    max_ee_step=(0.004, 0.004, 0.004, 0.05),
    workspace_min=(-0.1, -0.1, 0.0, -1.0),
    workspace_max=(0.1, 0.1, 0.2, 1.0),
    max_joint_velocity=(0.05, 0.05, 0.05, 0.5, 0.5, 0.5),
    joint_min=(-1.0, -1.0, -1.0, -3.0, -0.5, -0.5),
    joint_max=(1.0, 1.0, 1.0, 3.0, 0.5, 0.5),
)
ADVERSARIAL = [1e30, -1e30, 3.4e38, -3.4e38, 1e6, -1e6, 1.0, -1.0, 1e-3, -1e-3, 0.0, 1e-30]


def sim_filter(cfg: SafetyConfig = LIMITS) -> SafetyFilter:
    return SafetyFilter(cfg, LinearKinematics(SIM_JOINTS, np.array(SIM_EE_MAP), np.zeros(4)), HZ)


def assert_safe(f: SafetyFilter, q: np.ndarray, target: np.ndarray, started_inside: bool = True) -> None:
    dq = target - q
    assert np.isfinite(target).all()
    assert (np.abs(dq) <= f.max_joint_step * (1 + 1e-9) + 1e-15).all(), f"velocity: {dq} > {f.max_joint_step}"
    if started_inside:
        p = f.kin.forward(target)
        assert (p >= f.box_lo - 1e-12).all() and (p <= f.box_hi + 1e-12).all(), f"left the workspace: {p}"
        assert (target >= f.joint_lo - 1e-12).all() and (target <= f.joint_hi + 1e-12).all()


def test_huge_ee_rows_are_clamped_per_step_and_by_velocity():
    f = sim_filter()
    q = np.array([0.0, 0.0, 0.1, 0.0, 0.0, 0.0])
    step = f.step(q, np.array([1e30, -1e30, 3.4e38, 1e9]), "ee")
    assert_safe(f, q, step.target)
    dp = f.kin.forward(step.target) - f.kin.forward(q)
    # clamped to (0.004, -0.004, 0.004, 0.05), then halved as a whole: yaw would need 2x its 0.5 rad/s limit
    assert np.allclose(dp, [0.002, -0.002, 0.002, 0.025])
    assert {"ee_step", "velocity"} <= set(step.limited)


def test_velocity_scaling_keeps_the_direction():
    f = sim_filter()
    q = np.zeros(6)
    q[2] = 0.1
    row = np.array([0.01, 0.02, -0.03, 0.0, 0.1, -0.1])  # joint deltas, 0.03 > 0.05 m/s * 0.05 s
    step = f.step(q, row, "joint")
    dq = step.target - q
    assert_safe(f, q, step.target)
    assert np.allclose(dq / np.linalg.norm(dq), row / np.linalg.norm(row)) and "velocity" in step.limited


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_rows_are_refused(bad):
    f = sim_filter()
    for mode, width in (("ee", 4), ("joint", 6)):
        row = np.zeros(width)
        row[1] = bad
        with pytest.raises(UnsafeAction, match="not finite"):
            f.step(np.zeros(6), row, mode)
    with pytest.raises(UnsafeAction, match="current target"):
        f.step(np.full(6, np.nan), np.zeros(4), "ee")


def test_pushing_out_of_the_workspace_stops_at_its_wall():
    f = sim_filter()
    q = np.array([0.0, 0.0, 0.1, 0.0, 0.0, 0.0])
    for _ in range(500):
        target = f.step(q, np.array([0.004, -0.004, 0.004, 0.05]), "ee").target
        assert_safe(f, q, target)
        q = target
    assert np.allclose(f.kin.forward(q), [0.1, -0.1, 0.2, 1.0])
    assert "workspace" in f.step(q, np.array([0.004, 0, 0, 0]), "ee").limited


def test_outside_the_box_only_moves_back_toward_it():
    f = sim_filter()
    q = np.array([0.3, 0.0, 0.1, 0.0, 0.0, 0.0])  # x = 0.3, the box ends at 0.1
    out = f.step(q, np.array([0.004, 0.0, 0.0, 0.0]), "ee").target
    assert np.array_equal(out, q)  # no further out
    back = f.step(q, np.array([-0.004, 0.0, 0.0, 0.0]), "ee").target
    assert back[0] == pytest.approx(0.2975)  # back in, at the velocity limit (0.05 m/s * 0.05 s)
    joint = f.step(q, np.array([0.002, 0.0, 0.0, 0.0, 0.0, 0.0]), "joint").target
    assert np.array_equal(joint, q)  # a joint-space row that would leave further is cut to nothing


def test_joint_limits_hold_in_joint_mode():
    f = sim_filter()
    q = np.array([0.0, 0.0, 0.1, 0.0, 0.49, -0.49])  # pitch and roll 1 cm from their limits (+-0.5)
    step = f.step(q, np.array([0, 0, 0, 0, 1e9, -1e9]), "joint")
    assert step.target[4] == 0.5 and step.target[5] == -0.5 and "joint_limit" in step.limited
    assert_safe(f, q, step.target)
    outside = np.array([0.0, 0.0, 0.1, 0.0, 0.7, 0.0])  # already past the limit: may only come back
    assert f.step(outside, np.array([0, 0, 0, 0, 0.01, 0]), "joint").target[4] == 0.7
    assert f.step(outside, np.array([0, 0, 0, 0, -0.01, 0]), "joint").target[4] == pytest.approx(0.69)


@pytest.mark.parametrize("mode", ["ee", "joint"])
def test_random_adversarial_streams_never_break_a_limit(mode):
    rng = np.random.default_rng(0)
    f = sim_filter()
    q = np.array([0.0, 0.0, 0.1, 0.0, 0.0, 0.0])
    width = 4 if mode == "ee" else 6
    for _ in range(3000):
        row = rng.choice(ADVERSARIAL, size=width) * rng.choice([1.0, 0.5, 1e-3], size=width)
        target = f.step(q, row, mode).target
        assert_safe(f, q, target)
        q = target


class PlanarArm(Kinematics):
    """Two revolute links in the xy plane (0.3 m, 0.25 m), a prismatic z and a wrist yaw: nonlinear forward map."""

    def forward(self, q):
        a, b, z, w = q
        return np.array([0.3 * np.cos(a) + 0.25 * np.cos(a + b), 0.3 * np.sin(a) + 0.25 * np.sin(a + b), z, a + b + w])

    def jacobian(self, q):
        a, b, _, _ = q
        s1, s12, c1, c12 = np.sin(a), np.sin(a + b), np.cos(a), np.cos(a + b)
        return np.array(
            [
                [-0.3 * s1 - 0.25 * s12, -0.25 * s12, 0, 0],
                [0.3 * c1 + 0.25 * c12, 0.25 * c12, 0, 0],
                [0, 0, 1, 0],
                [1, 1, 0, 1],
            ]
        )


def test_nonlinear_kinematics_stays_in_the_box():
    joints = ("shoulder", "elbow", "z", "wrist")
    cfg = SafetyConfig(
        workspace_min=(0.2, -0.2, 0.0, -2.0), workspace_max=(0.5, 0.2, 0.3, 2.0), max_joint_velocity=(1.0,)
    )
    f = SafetyFilter(cfg, PlanarArm(joints), HZ)
    q = np.array([-0.3, 1.2, 0.1, 0.0])
    assert f.violation(q) == 0.0
    rng = np.random.default_rng(1)
    for _ in range(2000):
        row = rng.choice(ADVERSARIAL, size=4)
        target = f.step(q, row, rng.choice(["ee", "joint"])).target
        assert_safe(f, q, target)
        q = target


def test_config_checks_name_fields():
    with pytest.raises(ConfigError, match=r"SafetyConfig.workspace_min"):
        SafetyConfig(workspace_min=(0, 0, 0, 0), workspace_max=(0, 1, 1, 1))
    with pytest.raises(ConfigError, match=r"SafetyConfig.max_joint_velocity"):
        SafetyConfig(max_joint_velocity=(0.1, 0.1)).check_joints(SIM_JOINTS)
    with pytest.raises(ConfigError, match=r"SafetyConfig.joint_min"):
        SafetyConfig(joint_min=(0.0,), joint_max=(1.0, 2.0))
    with pytest.raises(ValueError, match="rank"):
        LinearKinematics(SIM_JOINTS, np.zeros((4, 6)), np.zeros(4))
    with pytest.raises(ValueError, match=r"ExecutorConfig.kinematics='nope'"):
        load_kinematics("nope", SIM_JOINTS, SIM_EE_MAP, (0, 0, 0, 0))
    with pytest.raises(ValueError, match=r"is not a rlt\.robot\.kinematics\.Kinematics"):
        load_kinematics("numpy:ndarray", ("a",), (), ())


def test_plugged_kinematics_load_by_name(monkeypatch):
    import sys
    import types

    module = types.ModuleType("my_arm_kinematics")
    module.PlanarArm = PlanarArm
    monkeypatch.setitem(sys.modules, "my_arm_kinematics", module)
    kin = load_kinematics("my_arm_kinematics:PlanarArm", ("shoulder", "elbow", "z", "wrist"), (), ())
    assert isinstance(kin, PlanarArm) and kin.joint_names == ("shoulder", "elbow", "z", "wrist")
