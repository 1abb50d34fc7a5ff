"""`rlt train token`: train the RL-token encoder–decoder on the frozen VLA's prefix embeddings.

`--vla` is the project's VLA checkpoint (.pt), or another policy exported as ONNX on the embeddings contract
`rlt.embed/1` (`rlt.models.embed`: "bring your own VLA"); with an ONNX policy, `--data` names the datasets, whose
embeddings are computed once with ONNX Runtime and cached beside the token (OUT/embeddings.npz).

Also owns what `rlt train image-features` shares with it: both train an encoder on the demos of a frozen VLA
checkpoint, then print its diagnostics.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlt import overrides

SECTIONS: overrides.Sections = {"token": "rlt.models.config:TokenConfig"}
DEFAULT_VLA = Path("artifacts/vla/vla.pt")
DEFAULT_OUT = Path("artifacts/token")


def add_encoder_arguments(parser: argparse.ArgumentParser, out: Path, checkpoint_name: str, vla_help: str,
                          sections: overrides.Sections, set_example: str) -> None:
    parser.add_argument("--vla", type=Path, default=DEFAULT_VLA, help=vla_help)
    parser.add_argument("--data", "--demos", dest="demos", type=Path, nargs="+", metavar="DATASET",
                        help="datasets (rosbag2 folders, or folders of them; default: those the VLA checkpoint was "
                             "trained on)")
    parser.add_argument("--out", type=Path, default=out, help=f"output folder; the checkpoint is OUT/{checkpoint_name}")
    parser.add_argument("--no-diagnose", action="store_true", help="skip the diagnostics after training")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    overrides.add_set_argument(parser, sections, set_example)


def run_encoder(args: argparse.Namespace, sections: overrides.Sections, train: Callable[..., Path],
                diagnose: Callable[..., Any]) -> int:
    """Train the encoder of the one section of `sections` on the `--set` config, then diagnose it."""
    from rlt.models.checkpoint import load_checkpoint
    from rlt.models.vla import CHECKPOINT_KIND

    (cfg,) = overrides.build(sections, args.set).values()
    demos = args.demos or load_checkpoint(args.vla, CHECKPOINT_KIND)["demos"]
    if not demos:
        raise ValueError(f"{args.vla} does not name its demonstrations; pass --demos")
    checkpoint = train(args.vla, demos, args.out, cfg, progress=not args.quiet)
    if not args.no_diagnose:
        diagnose(checkpoint, args.vla, demos)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_encoder_arguments(parser, DEFAULT_OUT, "token.pt", "frozen VLA: the project's checkpoint (.pt), or another "
                          "policy's ONNX graph on the embeddings contract rlt.embed/1 (.onnx)",
                          SECTIONS, "token.token_dim=32")
    parser.add_argument("--rollouts", type=Path, nargs="+",
                        help="base-policy rollout datasets (`rlt sim rollouts`) added to the training frames")


def run(args: argparse.Namespace) -> int:
    from functools import partial

    from rlt.models.rl_token import diagnose_token, train_token

    if args.vla.suffix == ".onnx":
        return run_onnx(args)
    return run_encoder(args, SECTIONS, partial(train_token, rollouts=args.rollouts), diagnose_token)


def run_onnx(args: argparse.Namespace) -> int:
    """The token on the embeddings of an `rlt.embed/1` ONNX policy (`rlt.models.embed.train_token_onnx`)."""
    from rlt.models.embed import train_token_onnx
    from rlt.models.rl_token import diagnose_token

    if not args.demos:
        raise ValueError(f"{args.vla} is an ONNX policy, which names no datasets: pass --data DATASET")
    if args.rollouts:
        raise ValueError("--rollouts is for the project's VLA checkpoint; with an ONNX policy, pass the rollout "
                         "datasets to --data too (every episode of --data is used, failed ones included)")
    cfg = overrides.build(SECTIONS, args.set)["token"]
    checkpoint = train_token_onnx(args.vla, args.demos, args.out, cfg, progress=not args.quiet)
    if not args.no_diagnose:
        diagnose_token(checkpoint, args.vla, args.demos)
    return 0
