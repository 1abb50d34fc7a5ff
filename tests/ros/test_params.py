"""rlt_nodes.params declares one ROS parameter per config field and builds the dataclass back."""

import dataclasses
import importlib
import re
from pathlib import Path

import pytest
from rclpy.parameter import Parameter

import rlt_nodes
from rlt.config import Config, ConfigError
from rlt_nodes.params import check_given, declare, declare_config, given_parameters

pytestmark = pytest.mark.ros


@dataclasses.dataclass(frozen=True)
class DemoConfig(Config):
    rate_hz: float = 20.0
    chunk_len: int = 10
    name: str = "front"
    cameras: tuple[str, ...] = ("front", "wrist")
    scales: tuple[float, ...] = ()
    explore: bool = True

    def validate(self) -> None:
        self.require_positive("rate_hz", "chunk_len")


def test_defaults_come_from_the_dataclass(ros):
    node = ros.node("params_defaults")
    assert declare_config(node, DemoConfig) == DemoConfig()
    assert node.get_parameter("chunk_len").value == 10
    assert node.get_parameter("cameras").value == ["front", "wrist"]


def test_overrides_and_prefix(ros):
    node = ros.node(
        "params_override",
        parameter_overrides=[
            Parameter("demo.rate_hz", value=50.0),
            Parameter("demo.cameras", value=["wrist"]),
            Parameter("demo.scales", value=[0.5, 2.0]),
            Parameter("demo.explore", value=False),
        ],
    )
    cfg = declare_config(node, DemoConfig, prefix="demo")
    assert cfg == DemoConfig(rate_hz=50.0, cameras=("wrist",), scales=(0.5, 2.0), explore=False)


def test_invalid_override_names_the_field(ros):
    node = ros.node("params_bad", parameter_overrides=[Parameter("chunk_len", value=0)])
    with pytest.raises(ConfigError, match=r"DemoConfig\.chunk_len=0: must be > 0"):
        declare_config(node, DemoConfig)


def test_an_int_for_a_float_is_converted_and_a_wrong_type_is_one_clear_error(ros):
    ints = [Parameter("rate_hz", value=10), Parameter("timeout_s", value=3)]
    node = ros.node("params_types", parameter_overrides=ints)
    assert declare_config(node, DemoConfig).rate_hz == 10.0
    assert declare(node, "timeout_s", 60.0) == 3.0 and isinstance(declare(node, "other_s", 1.5), float)
    bad = ros.node("params_types_bad", parameter_overrides=[Parameter("chunk_len", value="ten"),
                                                            Parameter("every_s", value="abc")])
    with pytest.raises(ConfigError, match=r"DemoConfig\.chunk_len='ten': expected int, got str"):
        declare_config(bad, DemoConfig)
    with pytest.raises(ConfigError, match=r"parameter every_s='abc': expected float, got str"):
        declare(bad, "every_s", 60.0)
    lists = ros.node("params_types_list", parameter_overrides=[Parameter("scales", value=[1, 2])])
    assert declare_config(lists, DemoConfig).scales == (1.0, 2.0)


def test_an_override_the_node_does_not_declare_is_an_error_naming_the_close_ones(ros, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    shared_by_all: 1\n"  # /** is every node's: not checked
                      "params_given:\n  ros__parameters:\n    demo:\n      rate_hz: 5.0\n      chunklen: 3\n"
                      "other_node:\n  ros__parameters:\n    anything: 1\n")
    argv = ["exe", "--ros-args", "-r", "__node:=params_given", "--params-file", str(params),
            "-p", "params_given:sigma:=0.05", "-p", "other_node:whatever:=1", "-p", "demo.explore:=false"]
    assert given_parameters("params_given", argv) == {
        "demo.rate_hz": f"{params} (params_given)", "demo.chunklen": f"{params} (params_given)",
        "sigma": "-p params_given:sigma:=0.05", "demo.explore": "-p demo.explore:=false"}
    node = ros.node("params_given")
    declare_config(node, DemoConfig, prefix="demo")
    declare(node, "rl.sigma", 0.1)
    with pytest.raises(ValueError) as err:
        check_given(node, argv)
    assert str(err.value) == (
        f"node params_given declares no parameter demo.chunklen (from {params} (params_given)): did you mean "
        "demo.chunk_len, demo.scales, demo.name?; sigma (from -p params_given:sigma:=0.05): did you mean rl.sigma?")
    check_given(node, [*argv[:4], "-p", "params_given:rl.sigma:=0.05", "-p", "other_node:whatever:=1"])  # fine
    for bare in (["exe"], ["exe", "--ros-args"]):  # `ros2 run rlt_nodes <node>` with no arguments
        assert given_parameters("params_given", bare) == {}
        check_given(node, bare)


NODE_DIR = Path(rlt_nodes.__file__).parent
# each node's own (unprefixed) parameters: the names launch/config/*.yaml and launch/sessions.yaml set
NODE_CONFIGS = {
    "actor_node": {"ActorNodeConfig": {"human_timeout_s", "max_learner_wait_s", "weights_file"}},
    "chunk_executor_node": {"ChunkExecutorNodeConfig": {"controller_topic", "operator_topic"}},
    "learner_node": {"LearnerNodeConfig": {"checkpoint_dir", "checkpoint_every_s"}},
    "realsense_node": {"RealSenseNodeConfig": {"frame_prefix"}},
    "sim_camera_node": {"SimCameraNodeConfig": {"lockstep"}},
    "sim_driver_node": {"SimDriverNodeConfig": {"request_timeout_s", "state_subscribers", "instruction",
                                                "episode_log"}},
    "teleop_node": {"MappingConfig": {"mapping"}},  # sim_human_node declares the same one
    "vla_node": {"VlaNodeConfig": {"lockstep", "joint_names", "sync_tolerance_s"}},
}


def test_no_node_declares_a_parameter_outside_a_config_dataclass():
    """Every node parameter is a field of a Config (its default and its help text written once); the bare
    `declare` is left to rlt_nodes.params, for the shared `/**` parameters (model_path, rl.preset, rl.chunk_len)."""
    bare = [f"{path.name}:{n}: {line.strip()}" for path in sorted(NODE_DIR.glob("*.py")) if path.name != "params.py"
            for n, line in enumerate(path.read_text().splitlines(), 1) if re.search(r"\bdeclare\(", line)]
    assert not bare, "parameters declared outside a Config dataclass:\n" + "\n".join(bare)


@pytest.mark.parametrize("module", sorted(NODE_CONFIGS))
def test_each_node_config_keeps_its_parameter_names_and_documents_every_field(module):
    if module == "sim_driver_node":
        pytest.importorskip("mujoco")
    mod = importlib.import_module(f"rlt_nodes.{module}")
    for name, fields in NODE_CONFIGS[module].items():
        cls = getattr(mod, name)
        assert issubclass(cls, Config) and set(cls.field_kinds()) == fields
        cls()  # the defaults validate
        undocumented = [f for f in sorted(fields) if not cls.field_docs().get(f)]  # each becomes help text
        assert not undocumented, f"{name}: fields without a comment: {undocumented}"


def test_the_scripted_human_reads_the_teleop_nodes_mapping_parameter():
    pytest.importorskip("mujoco")
    from rlt_nodes import sim_human_node, teleop_node

    assert sim_human_node.MappingConfig is teleop_node.MappingConfig  # one default for both nodes


def test_a_layered_session_reaches_the_node_as_its_merged_params(ros, tmp_path):
    """A session with base params (the rehearsal: robot.yaml, rehearsal.yaml over it) passes one --params-file per
    layer; rcl merges them value by value, the later winning, exactly as Session.params() reports."""
    from rlt.app.launch import load_session

    session = load_session("rehearsal")
    files = [a for path in session.layers() for a in ("--params-file", str(path))]
    node = ros.node("learner", cli_args=["--ros-args", *files], automatically_declare_parameters_from_overrides=True)
    merged = session.params()
    learner = merged["learner"]["ros__parameters"]
    assert node.get_parameter("checkpoint_dir").value == learner["checkpoint_dir"] == "runs/rehearsal/learner"
    assert node.get_parameter("checkpoint_every_s").value == learner["checkpoint_every_s"]  # robot.yaml's, kept
    assert node.get_parameter("rl.chunk_len").value == merged["/**"]["ros__parameters"]["rl"]["chunk_len"]
