"""`rlt session`: the main job — artifacts, online RLT in the launched sim session, evaluation, report."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rlt.session import SessionConfig

    defaults = SessionConfig()
    for name, (scalar, _) in SessionConfig.field_kinds().items():
        flag = f"--{name.replace('_', '-')}"
        if scalar is bool:
            parser.add_argument(flag, action="store_true", help=f"(default: {getattr(defaults, name)})")
        else:
            parser.add_argument(
                flag, type=scalar, default=getattr(defaults, name), help=f"(default: {getattr(defaults, name)})"
            )


def run(args: argparse.Namespace) -> int:
    from rlt.session import SessionConfig, SimSession

    cfg = SessionConfig.from_dict({name: getattr(args, name) for name in SessionConfig.field_kinds()})
    SimSession(cfg).run()
    return 0
