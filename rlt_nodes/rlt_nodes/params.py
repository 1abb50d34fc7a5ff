"""ROS parameters <-> config dataclasses: one declared parameter per `rlt.config.Config` field.

Defaults come from the dataclass (the single source); the node's parameter overrides (YAML, --ros-args -p) are
read back and validated by the dataclass itself, so a bad value stops the node in its constructor with a message
naming the field. Parameters may carry a prefix (e.g. ``sim.preset``) so one node can hold several configs.
"""

from __future__ import annotations

from typing import TypeVar

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter

from rlt.config import Config

C = TypeVar("C", bound=Config)

_ARRAY_TYPES = {
    bool: Parameter.Type.BOOL_ARRAY,
    int: Parameter.Type.INTEGER_ARRAY,
    float: Parameter.Type.DOUBLE_ARRAY,
    str: Parameter.Type.STRING_ARRAY,
}


def declare_config(node: Node, cls: type[C], prefix: str = "") -> C:
    """Declare every field of `cls` (all have defaults) as a read-only parameter of `node`; build the config back."""
    defaults = cls()
    values = {}
    for name, (scalar, is_tuple) in cls.field_kinds().items():
        default = getattr(defaults, name)
        param = f"{prefix}.{name}" if prefix else name
        descriptor = ParameterDescriptor(description=f"{cls.__name__}.{name}", read_only=True)
        if is_tuple and not default:
            # an empty list carries no type for rclpy: declare the array type so overrides are accepted
            value = node.declare_parameter(param, _ARRAY_TYPES[scalar], descriptor).value or []
        else:
            value = node.declare_parameter(param, list(default) if is_tuple else default, descriptor).value
        values[name] = tuple(value) if is_tuple else value
    return cls(**values)
