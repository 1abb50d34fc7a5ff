"""Configuration base: every tunable of the stack lives in a frozen dataclass derived from `Config`.

This module owns the rules all configs share: field types limited to what a ROS 2 parameter can hold
(bool, int, float, str and tuples of one of those), validation in `__post_init__` with messages that name
the offending field, and loading from plain dicts (YAML, CLI) that rejects unknown keys.
Concrete configs live next to the code they configure (`rlt.sim.config`, `rlt.rl.config`, ...) and are
the single source of defaults: nodes declare one ROS parameter per field (`rlt_nodes.params`), the CLI
and the launch YAML only override.
It must not import rclpy or any message package.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

C = TypeVar("C", bound="Config")

SCALAR_TYPES: tuple[type, ...] = (bool, int, float, str)


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the config class and field."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of all configs. Subclasses are frozen dataclasses and override `validate()`."""

    def __post_init__(self) -> None:
        for f, kind in self.field_kinds().items():
            value = getattr(self, f)
            coerced = _coerce(type(self).__name__, f, kind, value)
            if coerced is not value:
                object.__setattr__(self, f, coerced)
        self.validate()

    # ------------------------------------------------------------------ validation helpers
    def validate(self) -> None:
        """Cross-field and range checks; raise `ConfigError` via `self.fail` naming the fields."""

    def fail(self, field: str, message: str) -> typing.NoReturn:
        raise ConfigError(f"{type(self).__name__}.{field}={getattr(self, field, '?')!r}: {message}")

    def require_positive(self, *names: str) -> None:
        for n in names:
            if not getattr(self, n) > 0:
                self.fail(n, "must be > 0")

    def require_range(self, name: str, lo: float, hi: float) -> None:
        v = getattr(self, name)
        if not lo <= v <= hi:
            self.fail(name, f"must be in [{lo}, {hi}]")

    def require_choice(self, name: str, choices: typing.Iterable[str]) -> None:
        choices = tuple(choices)
        if getattr(self, name) not in choices:
            self.fail(name, f"must be one of {', '.join(choices)}")

    # ------------------------------------------------------------------ (de)serialization
    @classmethod
    def field_kinds(cls) -> dict[str, tuple[type, bool]]:
        """Map field name -> (scalar type, is_tuple). Raises TypeError for unsupported annotations."""
        hints = typing.get_type_hints(cls)
        kinds: dict[str, tuple[type, bool]] = {}
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            if hint in SCALAR_TYPES:
                kinds[f.name] = (hint, False)
                continue
            origin, args = typing.get_origin(hint), typing.get_args(hint)
            if origin is tuple and len(args) == 2 and args[1] is Ellipsis and args[0] in SCALAR_TYPES:
                kinds[f.name] = (args[0], True)
                continue
            raise TypeError(f"{cls.__name__}.{f.name}: type {hint} cannot be a ROS parameter")
        return kinds

    @classmethod
    def field_docs(cls) -> dict[str, str]:
        """Map field name -> its comment in the class source (the lines just above it and its trailing comment, with
        the comment lines continuing that one under itself), the text `--help` shows; '' where a field has none.
        A comment block that follows a blank line heads a group of fields (`# losses`) and is no field's comment."""
        import inspect
        import re

        names = {f.name for f in dataclasses.fields(cls)}
        docs: dict[str, str] = {}
        above: list[str] = []
        trailing: tuple[str, int] | None = None  # (field, column of its trailing comment's text) on the line before
        heading = False  # inside a comment block that follows a blank line
        for line in inspect.getsource(cls).splitlines():
            text = line.strip()
            if not text:
                heading, above, trailing = True, [], None
                continue
            field = re.match(r"(\w+): [^=#]+(?:=[^#]*)?(?:#\s*(.*))?$", text)
            comment = text.lstrip("#").strip()
            if text.startswith("#") and trailing and len(line) - len(line.lstrip("# ")) == trailing[1]:
                docs[trailing[0]] += f" {comment}"  # a trailing comment continued under itself
                continue
            trailing = None
            if text.startswith("#"):
                if not heading:
                    above.append(comment)
                continue
            if field and field.group(1) in names:
                docs[field.group(1)] = " ".join([*above, field.group(2) or ""]).strip()
                if field.group(2):
                    trailing = (field.group(1), len(line) - len(line.lstrip()) + field.start(2))
            heading, above = False, []
        return docs

    @classmethod
    def from_dict(cls: type[C], values: Mapping[str, Any], *, source: str = "") -> C:
        """Build from a mapping; unknown keys are an error that lists the valid ones."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            where = f" in {source}" if source else ""
            raise ConfigError(
                f"{cls.__name__}: unknown key(s) {', '.join(unknown)}{where}; valid keys: {', '.join(sorted(names))}"
            )
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **changes)


def _coerce(cls_name: str, name: str, kind: tuple[type, bool], value: Any) -> Any:
    return coerce(f"{cls_name}.{name}", kind, value)


def kind_of(value: Any) -> tuple[type, bool]:
    """The (scalar type, is_tuple) of a default value, as `Config.field_kinds` gives it for a field."""
    if isinstance(value, (tuple, list)):
        if not value:
            raise TypeError("kind_of: an empty list carries no element type")
        return type(value[0]), True
    return type(value), False


def coerce(where: str, kind: tuple[type, bool], value: Any) -> Any:
    """`value` as the (scalar, is_tuple) `kind`: an int where a float is expected is converted (safe), anything
    else of the wrong type is a ConfigError naming `where`, the expected and the given type."""
    scalar, is_tuple = kind
    if is_tuple:
        if isinstance(value, str) or not isinstance(value, typing.Iterable):
            raise ConfigError(f"{where}={value!r}: expected a list of {scalar.__name__}")
        items = tuple(_coerce_scalar(where, scalar, v) for v in value)
        return items if items != value or not isinstance(value, tuple) else value
    return _coerce_scalar(where, scalar, value)


def _coerce_scalar(where: str, scalar: type, value: Any) -> Any:
    if scalar is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # YAML and ROS give 1 for 1.0
    if (scalar is bool and not isinstance(value, bool)) or not isinstance(value, scalar):
        raise ConfigError(f"{where}={value!r}: expected {scalar.__name__}, got {type(value).__name__}")
    if scalar is int and isinstance(value, bool):
        raise ConfigError(f"{where}={value!r}: expected int, got bool")
    if scalar is float and not math.isfinite(value):
        raise ConfigError(f"{where}={value!r}: must be finite")
    return value
