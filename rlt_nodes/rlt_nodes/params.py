"""ROS parameters <-> config dataclasses: one declared parameter per `rlt.config.Config` field.

Defaults come from the dataclass (the single source); the node's parameter overrides (YAML, --ros-args -p) are
read back and validated by the dataclass itself, so a bad value stops the node in its constructor with a message
naming the field. Parameters may carry a prefix (e.g. ``sim.preset``) so one node can hold several configs.
Parameters are declared with dynamic typing: an override of another type than the default's (``10`` for a float,
as YAML and ``-p`` write it) is converted where that is safe (int -> float) and otherwise refused by that message,
never by rclpy's type exception.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Sequence
from typing import TypeVar

import yaml
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from rlt.config import Config, coerce, kind_of
from rlt.execution import Chunking
from rlt.rl.config import PRESETS, RLConfig, resolve

C = TypeVar("C", bound=Config)
T = TypeVar("T", bool, int, float, str, tuple)


def declare_config(node: Node, cls: type[C], prefix: str = "", defaults: C | None = None) -> C:
    """Declare every field of `cls` as a read-only parameter of `node`, defaulting to `defaults` (else the class
    defaults); build the config back."""
    defaults = cls() if defaults is None else defaults
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
    rl = declare_config(node, RLConfig, "rl", _rl_preset(node))
    model_path = declare(node, "model_path", "")
    if not model_path:
        return rl
    from rlt.models.onnx_vla import read_spec  # onnx is loaded by the nodes that size themselves on a model only

    spec = read_spec(model_path)
    return rl.for_model(spec.token_dim, spec.proprio_dim, spec.chunk_len, spec.action_dim, source=model_path)


def declare_chunking(node: Node) -> Chunking:
    """C and the observation stride of a driver or teleop node, from `rl.chunk_len` and `rl.stride`: the one place
    they are set (the params file's `/**` block, shared with the actor and the learner)."""
    defaults = _rl_preset(node)
    rl = defaults.replace(chunk_len=declare(node, "rl.chunk_len", defaults.chunk_len),
                          stride=declare(node, "rl.stride", defaults.stride))
    return Chunking.of(rl)


def _rl_preset(node: Node) -> RLConfig:
    """The RLConfig of the preset named by parameter `rl.preset` (rlt.rl.config.PRESETS): the rl.* defaults."""
    return resolve({"preset": declare(node, "rl.preset", next(iter(PRESETS)))}, source=f"node {node.get_name()}")


def given_parameters(node_name: str, argv: Sequence[str]) -> dict[str, str]:
    """The parameters the command line sets for `node_name` itself -> where: `-p [NODE:]NAME:=V` and the entries
    under the node's own name in each `--params-file` (not `/**`, which every node of a session shares)."""
    args = list(argv)[list(argv).index("--ros-args") + 1 :] if "--ros-args" in argv else []
    given: dict[str, str] = {}
    for flag, value in itertools.pairwise([*args, ""]):  # each flag and the word after it
        if flag in ("-p", "--param"):
            name = value.split(":=", 1)[0]
            scope, _, bare = name.rpartition(":")
            if not scope or scope.strip("/").split("/")[-1] == node_name:
                given[bare] = f"-p {value}"
        elif flag == "--params-file":
            with open(value) as f:
                doc = yaml.safe_load(f) or {}
            for key, block in doc.items():
                if str(key).strip("/").split("/")[-1] == node_name and isinstance(block, dict):
                    for name in _flatten(block.get("ros__parameters") or {}):
                        given[name] = f"{value} ({key})"
    return given


def check_given(node: Node, argv: Sequence[str]) -> None:
    """ValueError naming each parameter the command line sets for this node that it does not declare (rclpy would
    ignore it silently), with the declared names closest to it."""
    declared = set(node.list_parameters([], 0).names)
    unknown = {k: v for k, v in given_parameters(node.get_name(), argv).items() if k not in declared}
    if unknown:
        lines = []
        for name, where in sorted(unknown.items()):
            close = difflib.get_close_matches(name, declared, 3, 0.5) or [
                d for d in sorted(declared) if d.endswith(f".{name}")][:3]  # `sigma` for `rl.sigma`
            lines.append(f"{name} (from {where}): did you mean {', '.join(close) or 'none close'}?")
        raise ValueError(f"node {node.get_name()} declares no parameter " + "; ".join(lines))


def _flatten(block: dict, prefix: str = "") -> list[str]:
    names = []
    for key, value in block.items():
        name = f"{prefix}{key}"
        names += _flatten(value, f"{name}.") if isinstance(value, dict) else [name]
    return names
