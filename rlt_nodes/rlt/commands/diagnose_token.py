"""`rlt diagnose token`: reconstruction with the real / zero / shuffled RL token, and a linear probe of the pose."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_TOKEN = Path("artifacts/token/token.pt")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", type=Path, default=DEFAULT_TOKEN, help="RL-token checkpoint")
    parser.add_argument("--vla", type=Path, help="VLA checkpoint (default: the one the token was trained on)")
    parser.add_argument("--demos", type=Path, nargs="+", help="demonstrations (default: the token's own)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from rlt.models.rl_token import diagnose_token

    report = diagnose_token(args.token, args.vla, args.demos, verbose=not args.json)
    if args.json:
        print(json.dumps(report, indent=2))
    return 0
