"""`rlt train image-features`: train the CNN image encoder of the "no RL token" ablation (an autoencoder on the
demo frames), the stand-in for z_rl that `rlt export --image-features` puts into the contract graph."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_VLA = Path("artifacts/vla/vla.pt")
DEFAULT_OUT = Path("artifacts/image_features")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vla", type=Path, default=DEFAULT_VLA,
                        help="VLA checkpoint: only its cameras, image size and episode split are used")
    parser.add_argument("--demos", type=Path, nargs="+", help="demonstrations (default: those the VLA was trained on)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output folder; the checkpoint is OUT/image_features.pt")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an ImageFeaturesConfig field, e.g. feature_dim=128 (repeatable)",
    )
    parser.add_argument("--no-diagnose", action="store_true", help="skip the diagnostics after training")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from rlt.models.checkpoint import load_checkpoint
    from rlt.models.config import ImageFeaturesConfig, config_from_overrides
    from rlt.models.image_features import diagnose_image_features, train_image_features
    from rlt.models.vla import CHECKPOINT_KIND

    cfg = config_from_overrides(ImageFeaturesConfig, args.set)
    demos = args.demos or load_checkpoint(args.vla, CHECKPOINT_KIND)["demos"]
    if not demos:
        raise ValueError(f"{args.vla} does not name its demonstrations; pass --demos")
    checkpoint = train_image_features(args.vla, demos, args.out, cfg, progress=not args.quiet)
    if not args.no_diagnose:
        diagnose_image_features(checkpoint, args.vla, demos)
    return 0
