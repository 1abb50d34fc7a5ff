"""`rlt train vla`: behaviour-clone the VLA on recorded demonstrations (CPU, a few minutes)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rlt import overrides

SECTIONS: overrides.Sections = {"vla": "rlt.models.config:VlaConfig", "train": "rlt.models.config:VlaTrainConfig"}
DEFAULT_DEMOS = Path("artifacts/demos/main")
DEFAULT_OUT = Path("artifacts/vla")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--demos",
        type=Path,
        nargs="+",
        default=[DEFAULT_DEMOS],
        help="demonstration datasets (rosbag2 folders written by record_demos), used together",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder; the checkpoint is OUT/vla.pt")
    parser.add_argument("--resume", action="store_true", help="continue the run stored in OUT")
    parser.add_argument(
        "--record-demos",
        action="store_true",
        help="first record the calibrated demo recipe (rlt.app.recipe) into the one --demos folder, "
        "keeping parts already there",
    )
    parser.add_argument("--preset", default="main", help="sim preset of --record-demos")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    overrides.add_set_argument(parser, SECTIONS, "train.steps=3000 --set vla.d_model=96")


def run(args: argparse.Namespace) -> int:
    from rlt.models.bc import train_vla

    configs = overrides.build(SECTIONS, args.set)
    cfg, train_cfg = configs["vla"], configs["train"]
    if args.record_demos:
        from rlt.app.recipe import record_vla_demos

        if len(args.demos) != 1:
            raise ValueError("--record-demos records into one --demos folder")
        record_vla_demos(args.demos[0], args.preset, cfg.image_size, progress=not args.quiet)
    train_vla(args.demos, args.out, cfg, train_cfg, resume=args.resume, progress=not args.quiet)
    return 0
