"""`rlt session`: the main job — artifacts, online RLT in the launched sim session, evaluation, report.

Its options are the fields of `rlt.app.session.SessionConfig`, set with `--set session.FIELD=VALUE` (`rlt.overrides`);
`--help` lists them with their meaning and default.
"""

from __future__ import annotations

import argparse

from rlt import overrides

SECTIONS: overrides.Sections = {"session": "rlt.app.session:SessionConfig"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    overrides.add_set_argument(parser, SECTIONS, "session.rl_minutes=5 --set 'session.variants=[]'")


def run(args: argparse.Namespace) -> int:
    from rlt.app.session import SimSession

    SimSession(overrides.build(SECTIONS, args.set)["session"]).run()
    return 0
