"""`rlt bag eval BAG CHECKPOINT`: the checkpoint's actor on the recorded VLA outputs vs the executed chunks, and the
critic's values along each episode (eval.json, chunk_diff.png, critic_values.png)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="rosbag2 folder with vla/output and action_chunk")
    parser.add_argument("checkpoint", type=Path,
                        help="learner checkpoint_dir (actor + critic) or an actor_weights.npz snapshot")
    parser.add_argument("-o", "--out", type=Path, help="output folder (default: <bag>_eval)")
    parser.add_argument("--episodes", type=int, nargs="+", default=[], metavar="ID", help="only these episodes")


def run(args: argparse.Namespace) -> int:
    import json

    from rlt.bags.evaluate import evaluate_bag

    out = args.out or args.bag.with_name(f"{args.bag.name}_eval")
    summary = evaluate_bag(args.bag, args.checkpoint, out, args.episodes)
    print(json.dumps(summary, indent=1))
    print(f"wrote {out / 'eval.json'}, {out / 'chunk_diff.png'}, {out / 'critic_values.png'}")
    return 0
