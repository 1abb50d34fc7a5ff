"""launch/config/robot.yaml: every node's parameters build their configs, and the values nodes share agree."""

import yaml

from rlt.app.launch import LAUNCH_DIR, load_session
from rlt.bags.recorder import RecorderConfig
from rlt.execution import Chunking
from rlt.rl.actor_core import ActorConfig
from rlt.rl.config import PRESETS, ROBOT_FIELDS, resolve
from rlt.robot.executor import ChunkExecutor, ExecutorConfig
from rlt.robot.realsense import RealSenseConfig
from rlt.robot.safety import SafetyConfig
from rlt.serving import VlaServerConfig
from rlt.teleop.joystick import JoystickConfig
from rlt.teleop.teleop import TeleopConfig, load_mapping


def params(node: str) -> dict:
    with open(LAUNCH_DIR / "config" / "robot.yaml") as f:
        return yaml.safe_load(f)[node]["ros__parameters"]


def test_robot_params_build_every_config_and_agree():
    shared = params("/**")
    rl = resolve(shared["rl"])
    assert {"token_dim", "proprio_dim"}.isdisjoint(shared["rl"]) and shared["model_path"]  # the model defines them
    cameras = [RealSenseConfig.from_dict(params(n)["camera"]) for n in ("camera_front", "camera_wrist")]
    vla = params("vla")
    server = VlaServerConfig.from_dict({k: v for k, v in vla.items() if k in VlaServerConfig.field_kinds()})
    executor = ExecutorConfig.from_dict(params("chunk_executor")["executor"])
    safety = SafetyConfig.from_dict(params("chunk_executor")["safety"])
    ChunkExecutor(executor, safety, chunking=Chunking.of(rl))  # kinematics and per-joint limits fit the joints
    ActorConfig.from_dict(params("actor")["actor"])
    assert server.cameras == tuple(c.name for c in cameras)
    assert all(c.vla_size == server.image_size for c in cameras)
    assert rl.action_scale == safety.max_ee_step and rl.action_dim == len(executor.action_axes)
    assert vla["lockstep"] is False and vla["sync_tolerance_s"] > 0
    teleop = TeleopConfig.from_dict(params("teleop").get("teleop", {}))
    mapping = load_mapping(params("teleop")["mapping"])
    JoystickConfig.from_dict(params("joystick")["joystick"])
    recorder = RecorderConfig.from_dict(params("recorder")["recorder"])
    assert teleop.axis_names == executor.action_axes
    assert all(abs(s) <= m for s, m in zip(mapping.scales, safety.max_ee_step, strict=True))  # full stick is allowed
    assert f"{params('chunk_executor')['controller_topic']}" in recorder.topics


def test_the_robot_trains_with_the_sim_preset_except_its_hardware_fields():
    """The values tuned in sim reach the robot session: its rl block names the sim's preset and sets only the
    listed robot fields, and no other block restates C or the stride."""
    with open(LAUNCH_DIR / "config" / "sim.yaml") as f:
        sim = resolve(yaml.safe_load(f)["/**"]["ros__parameters"]["rl"])
    block = params("/**")["rl"]
    robot = resolve(block)
    assert block["preset"] == "peg_insert" and sim == resolve({"preset": "peg_insert"})
    assert set(block) - {"preset"} <= set(ROBOT_FIELDS), set(block) - {"preset"} - set(ROBOT_FIELDS)
    differ = {k for k, v in robot.to_dict().items() if v != sim.to_dict()[k]}
    assert differ <= set(ROBOT_FIELDS) and robot.proprio_scale == PRESETS["peg_insert"]["proprio_scale"]
    with open(LAUNCH_DIR / "config" / "robot.yaml") as f:
        for node, node_block in yaml.safe_load(f).items():
            if node != "/**":
                text = yaml.safe_dump(node_block)
                assert "chunk_len" not in text and "stride" not in text, node


def test_the_split_sessions_cover_the_robot_session():
    robot, split, learner = (load_session(n) for n in ("robot", "robot_split", "robot_learner"))
    assert {n.name for n in split.nodes} | {n.name for n in learner.nodes} == {n.name for n in robot.nodes}
    assert [n.name for n in learner.nodes] == ["learner"] and "learner" not in {n.name for n in split.nodes}
    assert robot.params_file == split.params_file == learner.params_file


# what launch/config/rehearsal.yaml may set over robot.yaml, by node and dotted parameter (a trailing ".*": the whole
# node): the hardware the simulated arm replaces, and where the learner keeps its state (sim data must never resume
# into the robot's learner)
REHEARSAL_HARDWARE = ("sim_arm.*", "learner.checkpoint_dir")


def _flat(block: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in block.items():
        name = f"{prefix}{key}"
        out.update(_flat(value, f"{name}.") if isinstance(value, dict) else {name: value})
    return out


def test_the_rehearsal_runs_the_robot_session_with_only_its_hardware_replaced():
    session = load_session("rehearsal")
    assert session.base_params == (LAUNCH_DIR / "config" / "robot.yaml",)  # every robot value, as the robot has it
    with open(session.params_file) as f:
        over = {f"{node}.{k}" for node, block in yaml.safe_load(f).items() for k in _flat(block["ros__parameters"])}

    def hardware(key: str) -> bool:
        return any(key.startswith(h[:-1]) if h.endswith(".*") else key == h for h in REHEARSAL_HARDWARE)

    assert {k for k in over if not hardware(k)} == set(), "rehearsal.yaml may set only what the simulated arm replaces"
    robot = load_session("robot").params()
    assert session.params()["learner"]["ros__parameters"]["checkpoint_dir"] != robot["learner"]["ros__parameters"][
        "checkpoint_dir"]
    # the session: the robot's nodes with the simulated arm in place of the cameras (and no gamepad reader)
    robot_nodes = {n.name: n for n in load_session("robot").nodes}
    for node in session.nodes:
        assert node.name == "sim_arm" or node == robot_nodes[node.name], node
    assert set(robot_nodes) - {n.name for n in session.nodes} == {"camera_front", "camera_wrist", "joystick"}


def test_the_simulated_arm_serves_what_the_robot_nodes_expect():
    import pytest

    pytest.importorskip("mujoco")  # the arm's configs live beside it, in rlt.sim.arm
    from rlt.sim.arm import ArmConfig, JudgeConfig, SimArm
    from rlt.sim.config import SimConfig

    doc = load_session("rehearsal").params()  # robot.yaml with rehearsal.yaml over it, as the nodes read them
    arm = doc["sim_arm"]["ros__parameters"]
    sim = SimConfig.from_dict(arm["sim"])
    ArmConfig.from_dict(arm["arm"])
    JudgeConfig.from_dict(arm["judge"])
    vla, executor = doc["vla"]["ros__parameters"], doc["chunk_executor"]["ros__parameters"]
    assert sim.cameras == tuple(vla["cameras"]) and sim.image_size == vla["image_size"]
    assert arm["controller_topic"] == executor["controller_topic"]
    assert arm["operator_topic"] == executor["operator_topic"]
    assert tuple(executor["executor"]["joint_names"]) == tuple(vla["joint_names"]) == SimArm.joint_names
    assert executor["executor"]["control_hz"] == sim.control_hz  # the arm's episode log times steps at this rate
