"""`rlt train token`: train the RL-token encoder–decoder on the frozen VLA's prefix embeddings."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_VLA = Path("artifacts/vla/vla.pt")
DEFAULT_OUT = Path("artifacts/token")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vla", type=Path, default=DEFAULT_VLA, help="VLA checkpoint (frozen)")
    parser.add_argument("--demos", type=Path, nargs="+", help="demonstrations (default: those the VLA was trained on)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder; the checkpoint is OUT/token.pt")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a TokenConfig field, e.g. token_dim=32 (repeatable)",
    )
    parser.add_argument("--no-diagnose", action="store_true", help="skip the diagnostics after training")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from rlt.models.checkpoint import load_checkpoint
    from rlt.models.config import TokenConfig, config_from_overrides
    from rlt.models.rl_token import diagnose_token, train_token
    from rlt.models.vla import CHECKPOINT_KIND

    cfg = config_from_overrides(TokenConfig, args.set)
    demos = args.demos or load_checkpoint(args.vla, CHECKPOINT_KIND)["demos"]
    if not demos:
        raise ValueError(f"{args.vla} does not name its demonstrations; pass --demos")
    checkpoint = train_token(args.vla, demos, args.out, cfg, progress=not args.quiet)
    if not args.no_diagnose:
        diagnose_token(checkpoint, args.vla, demos)
    return 0
