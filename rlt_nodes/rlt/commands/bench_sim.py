"""`rlt bench sim`: env steps/s with 0, 1 and 2 cameras, and the expert's success per perception-noise level."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="main", help="difficulty preset (default: main)")
    parser.add_argument("--steps", type=int, default=1000, help="control steps per camera set (default: 1000)")
    parser.add_argument("--episodes", type=int, default=100, help="expert episodes per noise level (default: 100)")


def run(args: argparse.Namespace) -> int:
    from rlt.bench.sim import bench_sim, format_report

    print(format_report(bench_sim(preset=args.preset, steps=args.steps, episodes=args.episodes)))
    return 0
