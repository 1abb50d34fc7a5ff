"""rlt_nodes.params declares one ROS parameter per config field and builds the dataclass back."""

import dataclasses

import pytest
from rclpy.parameter import Parameter

from rlt.config import Config, ConfigError
from rlt_nodes.params import declare, declare_config

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
