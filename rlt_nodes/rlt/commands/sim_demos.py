"""`rlt sim demos`: record scripted-teleop demonstrations into an MCAP rosbag2 dataset."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--episodes", type=int, default=200, help="episodes to write (default: 200)")
    parser.add_argument("--preset", default="main", help="difficulty preset: easy, main, hard (default: main)")
    parser.add_argument("--out", type=Path, default=None, help="new dataset folder (default: artifacts/demos/PRESET)")
    parser.add_argument("--mode", default="full", choices=("full", "critical"), help="episode start (default: full)")
    parser.add_argument("--keep", default="all", choices=("all", "success"), help="keep every episode or successes")
    parser.add_argument("--image-size", type=int, default=96, help="camera images, px (default: 96)")
    parser.add_argument("--bias-mm", type=float, default=None, help="expert perception bias sigma, mm")
    parser.add_argument("--seed", type=int, default=0, help="expert seed (default: 0)")


def run(args: argparse.Namespace) -> int:
    from rlt.sim.config import ExpertConfig, SimConfig
    from rlt.sim.demos import record_demos

    expert = ExpertConfig(seed=args.seed)
    if args.bias_mm is not None:
        expert = expert.replace(bias_xy_sigma=args.bias_mm / 1000)
    out = args.out or Path("artifacts/demos") / args.preset
    info = record_demos(
        out,
        args.episodes,
        SimConfig(preset=args.preset, image_size=args.image_size),
        expert,
        mode=args.mode,
        keep=args.keep,
    )
    print(
        f"wrote {info['episodes']} episodes ({info['steps']} steps, "
        f"{info['successes_attempted']}/{info['attempts']} successful attempts) to {out}"
    )
    return 0
