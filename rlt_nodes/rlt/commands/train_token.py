"""`rlt train token`: train the RL-token encoder–decoder on the frozen VLA's prefix embeddings.

Also owns what `rlt train image-features` shares with it: both train an encoder on the demos of a frozen VLA
checkpoint, then print its diagnostics.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_VLA = Path("artifacts/vla/vla.pt")
DEFAULT_OUT = Path("artifacts/token")


def add_encoder_arguments(parser: argparse.ArgumentParser, out: Path, checkpoint_name: str, vla_help: str,
                          set_help: str) -> None:
    parser.add_argument("--vla", type=Path, default=DEFAULT_VLA, help=vla_help)
    parser.add_argument("--demos", type=Path, nargs="+", help="demonstrations (default: those the VLA was trained on)")
    parser.add_argument("--out", type=Path, default=out, help=f"output folder; the checkpoint is OUT/{checkpoint_name}")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=set_help)
    parser.add_argument("--no-diagnose", action="store_true", help="skip the diagnostics after training")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_encoder(args: argparse.Namespace, config_cls: type, train: Callable[..., Path],
                diagnose: Callable[..., Any]) -> int:
    from rlt.models.checkpoint import load_checkpoint
    from rlt.models.config import config_from_overrides
    from rlt.models.vla import CHECKPOINT_KIND

    cfg = config_from_overrides(config_cls, args.set)
    demos = args.demos or load_checkpoint(args.vla, CHECKPOINT_KIND)["demos"]
    if not demos:
        raise ValueError(f"{args.vla} does not name its demonstrations; pass --demos")
    checkpoint = train(args.vla, demos, args.out, cfg, progress=not args.quiet)
    if not args.no_diagnose:
        diagnose(checkpoint, args.vla, demos)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_encoder_arguments(parser, DEFAULT_OUT, "token.pt", "VLA checkpoint (frozen)",
                          "override a TokenConfig field, e.g. token_dim=32 (repeatable)")
    parser.add_argument("--rollouts", type=Path, nargs="+",
                        help="base-policy rollout datasets (`rlt sim rollouts`) added to the training frames")


def run(args: argparse.Namespace) -> int:
    from functools import partial

    from rlt.models.config import TokenConfig
    from rlt.models.rl_token import diagnose_token, train_token

    return run_encoder(args, TokenConfig, partial(train_token, rollouts=args.rollouts), diagnose_token)
