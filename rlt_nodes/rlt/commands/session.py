"""`rlt session`: the main job — artifacts, online RLT in the launched sim session, evaluation, report."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rlt.session import SessionConfig

    defaults, docs = SessionConfig(), SessionConfig.field_docs()
    for name, (scalar, is_tuple) in SessionConfig.field_kinds().items():
        flag = f"--{name.replace('_', '-')}"
        default = getattr(defaults, name)
        text = f"{docs.get(name, '')} (default: {default})".replace("%", "%%")
        if scalar is bool:
            parser.add_argument(flag, action="store_true", help=text)
        elif is_tuple:
            parser.add_argument(flag, type=scalar, nargs="*", default=list(default), help=text)
        else:
            parser.add_argument(flag, type=scalar, default=default, help=text)


def run(args: argparse.Namespace) -> int:
    from rlt.session import SessionConfig, SimSession

    cfg = SessionConfig.from_dict({name: getattr(args, name) for name in SessionConfig.field_kinds()})
    SimSession(cfg).run()
    return 0
