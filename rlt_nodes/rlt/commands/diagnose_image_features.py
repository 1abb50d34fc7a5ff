"""`rlt diagnose image-features`: reconstruction (own / shuffled features) and the linear pose probe of the
"no RL token" ablation's image features, comparable with `rlt diagnose token`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_CHECKPOINT = Path("artifacts/image_features/image_features.pt")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="image-feature checkpoint")
    parser.add_argument("--vla", type=Path, help="VLA checkpoint (default: the one the encoder was trained with)")
    parser.add_argument("--demos", type=Path, nargs="+", help="demonstrations (default: the encoder's own)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from rlt.models.image_features import diagnose_image_features

    report = diagnose_image_features(args.checkpoint, args.vla, args.demos, verbose=not args.json)
    if args.json:
        print(json.dumps(report, indent=2))
    return 0
