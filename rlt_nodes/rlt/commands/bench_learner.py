"""`rlt bench learner`: updates/s of the project's learner vs a plain PyTorch TD3 loop, and the matmul roofline."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token-dim", type=int, default=256, help="RL token size Z (default: 256, paper-like)")
    parser.add_argument("--action-dim", type=int, default=6, help="action dims D (default: 6)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    parser.add_argument("--seconds", type=float, default=6.0, help="timing per measurement (default: 6)")


def run(args: argparse.Namespace) -> int:
    from rlt.bench.learner import bench_learner, format_report

    print(
        format_report(
            bench_learner(
                token_dim=args.token_dim, action_dim=args.action_dim, threads=args.threads, seconds=args.seconds
            )
        )
    )
    return 0
