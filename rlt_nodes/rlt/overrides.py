"""`--set SECTION.FIELD=VALUE`: the one override grammar of every `rlt` command.

This module owns that grammar: parsing the items, checking SECTION and FIELD against the configs a command uses
(a mapping {section: Config class}), reading VALUE as YAML and coercing it to the field's type
(`rlt.config.coerce`), applying the overrides through `Config.replace` (so each config validates itself), and the
`--set` option with a `--help` epilog listing every settable field with its meaning (`Config.field_docs`) and
default. An unknown section or field is a `ConfigError` naming the close matches. `rlt launch` keeps
`--set NODE:SECTION.FIELD=VALUE`, the same names under a node (ROS parameter `rl.sigma` of node `actor`).
Why argparse and not a generator such as tyro: the config field comments already feed `--help`, and one `--set`
grammar that matches the ROS launch grammar `node:section.field` needs no new dependency.
It must not import rclpy; config classes may be named "module:Class" so that building the parser imports nothing
heavy (MuJoCo, torch) — they are imported when `--set` is parsed or `--help` is shown.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import importlib
import textwrap
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import yaml

from rlt.config import Config, ConfigError, coerce

# section -> its Config class, or "module:Class" (imported on first use)
Sections = Mapping[str, type[Config] | str]
# section -> {field: value} shown as the default in --help instead of the class default (e.g. a params file's)
FileDefaults = Mapping[str, Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class Override:
    """One parsed `--set SECTION.FIELD=VALUE` item; `value` has the field's type (tuples for lists)."""

    section: str
    field: str
    value: Any

    @property
    def text(self) -> str:
        """`value` as YAML text, read back to the same value (for interfaces that take "name=value" strings)."""
        return yaml_text(self.value)

    def __str__(self) -> str:
        return f"{self.section}.{self.field}={self.text}"


def resolve(sections: Sections) -> dict[str, type[Config]]:
    """The sections with every "module:Class" entry imported."""
    out: dict[str, type[Config]] = {}
    for name, cls in sections.items():
        if isinstance(cls, str):
            module, _, attr = cls.partition(":")
            cls = getattr(importlib.import_module(module), attr)
        out[name] = cls
    return out


def parse(items: Iterable[str], sections: Sections) -> list[Override]:
    """Parse `SECTION.FIELD=VALUE` items against `sections`, in order (a later item for the same field wins when
    applied). Unknown names and values of the wrong type are `ConfigError`s."""
    classes = resolve(sections)
    return [_parse_one(item, classes) for item in items]


def apply(configs: Mapping[str, Config], items: Iterable[str]) -> dict[str, Config]:
    """`configs` (section -> instance) with the items applied: new instances, validated by their class."""
    overrides = parse(items, {name: type(cfg) for name, cfg in configs.items()})
    changes: dict[str, dict[str, Any]] = {name: {} for name in configs}
    for o in overrides:
        changes[o.section][o.field] = o.value
    return {name: cfg.replace(**changes[name]) if changes[name] else cfg for name, cfg in configs.items()}


def build(sections: Sections, items: Iterable[str]) -> dict[str, Config]:
    """One config per section: its class defaults with the items applied."""
    return apply({name: cls() for name, cls in resolve(sections).items()}, items)


def yaml_text(value: Any) -> str:
    """`value` (a scalar or a tuple of scalars) as one line of YAML: 0.03, [0.001, 0.004], 'yes'."""
    text = yaml.safe_dump(list(value) if isinstance(value, tuple) else value, default_flow_style=True, width=1 << 16)
    return text.removesuffix("\n...\n").strip()


def add_set_argument(parser: argparse.ArgumentParser, sections: Sections, example: str,
                     defaults: Callable[[], FileDefaults] | None = None, note: str = "") -> None:
    """Add the repeatable `--set SECTION.FIELD=VALUE` option (stored in `args.set`) and a `--help` epilog listing
    every field of `sections` with its meaning and default. `defaults` (called when help is shown) gives values
    that replace the class defaults in that list, `note` says where they come from."""
    names = ", ".join(sections)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help=f"override one config field, e.g. --set {example} (repeatable; sections: {names}; "
                             "VALUE is YAML: 0.03, true, [0.001, 0.004]); the fields are listed below")
    parser.formatter_class = _EpilogFormatter
    # rendered when --help is shown, at the formatter's width: the config classes are imported only then
    parser.epilog = _Epilog(sections, defaults, note)  # type: ignore[assignment]


def help_epilog(sections: Sections, width: int = 100, defaults: FileDefaults | None = None, note: str = "") -> str:
    """The settable fields of each section: `section.field: type = default` and its source comment below."""
    lines = ["settable fields (--set SECTION.FIELD=VALUE)" + (f"; {note}" if note else "") + ":"]
    for section, entry in sections.items():
        try:
            cls = resolve({section: entry})[section]
        except ImportError as err:  # help still shows without an optional package (MuJoCo for the sim's configs)
            lines += ["", f"{section}: {entry} (its fields cannot be listed here: {err})"]
            continue
        summary = (cls.__doc__ or "").strip().split("\n\n")[0]
        head = f"{section}: {cls.__module__}.{cls.__name__}" + (f" — {' '.join(summary.split())}" if summary else "")
        lines += ["", *textwrap.wrap(head, width, subsequent_indent="  ", break_on_hyphens=False)]
        shown = (defaults or {}).get(section, {})
        docs, base = cls.field_docs(), cls()
        for name, (scalar, is_tuple) in cls.field_kinds().items():
            kind = f"list[{scalar.__name__}]" if is_tuple else scalar.__name__
            default = yaml_text(getattr(base, name))
            if name in shown and _yaml_text_any(shown[name]) != default:
                default = f"{_yaml_text_any(shown[name])} (class default {default})"
            lines += textwrap.wrap(f"{section}.{name}: {kind} = {default}", width, initial_indent="  ",
                                   subsequent_indent="        ", break_long_words=False, break_on_hyphens=False)
            if docs.get(name):
                lines += textwrap.wrap(docs[name], width, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- internals
def _parse_one(item: str, classes: Mapping[str, type[Config]]) -> Override:
    key, eq, text = item.partition("=")
    key = key.strip()
    section, dot, field = key.partition(".")
    if not (eq and dot and section and field and "." not in field):
        raise ConfigError(f"--set {item!r}: expected SECTION.FIELD=VALUE (sections: {', '.join(classes)})"
                          + _guess(key, classes))
    if section not in classes:
        raise ConfigError(f"--set {item!r}: unknown section {section}; sections: {', '.join(classes)}"
                          + _guess(key, classes))
    kinds = classes[section].field_kinds()
    if field not in kinds:
        guess = _guess(key, classes)
        listed = "" if guess else f"; the fields of {section}: {', '.join(kinds)}"
        raise ConfigError(f"--set {item!r}: unknown field {key}{guess}{listed}")
    return Override(section, field, _value(f"--set {key}", kinds[field], text))


def _guess(key: str, classes: Mapping[str, type[Config]]) -> str:
    """'; did you mean a.b?' for the names closest to `key`: the same field in the sections closest to its
    section, else the fields spelled most like its field (a bare FIELD: in every section)."""
    section, dot, field = key.rpartition(".")
    near = ([section] if section in classes else difflib.get_close_matches(section, classes, n=3)) if dot else []
    close = [f"{s}.{field}" for s in (near if dot else classes) if field in classes[s].field_kinds()]
    if not close:
        scored = sorted(((difflib.SequenceMatcher(None, field, f).ratio(), f"{s}.{f}")
                         for s in (near or classes) for f in classes[s].field_kinds()), reverse=True)
        close = [name for score, name in scored[:3] if score >= max(0.6, scored[0][0] - 0.1)] if scored else []
    return f"; did you mean {' or '.join(close)}?" if close else ""


def _value(where: str, kind: tuple[type, bool], text: str) -> Any:
    """VALUE as YAML, then coerced to `kind`: "3e-4" (YAML 1.1 reads a string) is a float where one is expected,
    and a str field takes any scalar as written ("1.0", "yes")."""
    scalar, is_tuple = kind
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{where}={text!r}: not valid YAML ({' '.join(str(err).split())})") from None
    if scalar is float:
        value = [_float(v) for v in value] if is_tuple and isinstance(value, list) else _float(value)
    elif scalar is str and not is_tuple and not isinstance(value, str | list | dict):
        value = text.strip()
    try:
        return coerce(where, kind, value)
    except ConfigError as err:
        hint = " (a list is written [a, b], an empty one [])" if is_tuple and not isinstance(value, list) else ""
        raise ConfigError(f"{err}{hint}") from None


def _float(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _yaml_text_any(value: Any) -> str:
    try:
        return yaml_text(tuple(value) if isinstance(value, list) else value)
    except yaml.YAMLError:
        return repr(value)


class _Epilog:
    """The `--set` fields epilog, rendered at help time (see `add_set_argument`)."""

    def __init__(self, sections: Sections, defaults: Callable[[], FileDefaults] | None, note: str) -> None:
        self.sections, self.defaults, self.note = sections, defaults, note

    def render(self, width: int) -> str:
        return help_epilog(self.sections, width, self.defaults() if self.defaults else None, self.note)


class _EpilogFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, with the description and epilog kept as written and a `_Epilog` rendered."""

    def add_text(self, text: Any) -> None:
        if isinstance(text, _Epilog):
            text = text.render(min(max(self._width - self._current_indent, 60), 100))  # readable on wide terminals
        super().add_text(text)
