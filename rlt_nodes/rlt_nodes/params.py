"""ROS parameters <-> config dataclasses: one declared parameter per `rlt.config.Config` field.

Defaults come from the dataclass (the single source); the node's parameter overrides (YAML, --ros-args -p) are
read back and validated by the dataclass itself, so a bad value stops the node in its constructor with a message
naming the field. Parameters may carry a prefix (e.g. ``sim.preset``) so one node can hold several configs.
Parameters are declared with dynamic typing: an override of another type than the default's (``10`` for a float,
as YAML and ``-p`` write it) is converted where that is safe (int -> float) and otherwise refused by that message,
never by rclpy's type exception.
"""

from __future__ import annotations

from typing import TypeVar

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from rlt.config import Config, coerce, kind_of
from rlt.rl.config import RLConfig

C = TypeVar("C", bound=Config)
T = TypeVar("T", bool, int, float, str, tuple)


def declare_config(node: Node, cls: type[C], prefix: str = "") -> C:
    """Declare every field of `cls` (all have defaults) as a read-only parameter of `node`; build the config back."""
    defaults = cls()
    values = {}
    for name in cls.field_kinds():
        param = f"{prefix}.{name}" if prefix else name
        values[name] = _declare(node, param, getattr(defaults, name), f"{cls.__name__}.{name}")
    return cls(**values)  # converts and validates: a wrong type or value is a ConfigError naming the field


def declare(node: Node, name: str, default: T) -> T:
    """Declare one plain read-only parameter (not part of a config); its value as `default`'s type (lists: tuple)."""
    return coerce(f"parameter {name}", kind_of(default), _declare(node, name, default, name))


def _declare(node: Node, param: str, default: object, description: str) -> object:
    descriptor = ParameterDescriptor(description=description, read_only=True, dynamic_typing=True)
    empty = isinstance(default, tuple | list) and not default
    # an empty list carries no type for rclpy: declare it unset, so an override of any array type is accepted
    value = node.declare_parameter(param, None if empty else _ros(default), descriptor).value
    return [] if value is None and empty else value


def _ros(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def declare_rl_config(node: Node) -> RLConfig:
    """The `rl.*` config of the actor and the learner, with the state sizes of the VLA at parameter `model_path`
    (read from its metadata: the model defines them). An empty `model_path` keeps rl.token_dim / rl.proprio_dim."""
    rl = declare_config(node, RLConfig, "rl")
    model_path = declare(node, "model_path", "")
    if not model_path:
        return rl
    from rlt.models.onnx_vla import read_spec  # onnx is loaded by the nodes that size themselves on a model only

    spec = read_spec(model_path)
    return rl.for_model(spec.token_dim, spec.proprio_dim, spec.chunk_len, spec.action_dim, source=model_path)
