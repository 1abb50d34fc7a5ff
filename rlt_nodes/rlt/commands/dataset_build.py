"""`rlt dataset build BAG [BAG ...] --out DATASET`: turn session recordings (recorder bags) into a training dataset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _names(text: str) -> tuple[str, ...]:
    """A comma-separated list of names ("front,wrist")."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bags", type=Path, nargs="+", metavar="BAG",
                        help="bags of sim or robot sessions (rlt bag record, the session's recorder), in order")
    parser.add_argument("--out", type=Path, required=True, help="new dataset folder (refused if it exists)")
    parser.add_argument("--cameras", type=_names, default=(), metavar="A,B",
                        help="cameras (topics camera/<name>/image_raw); default: every camera of the first bag")
    parser.add_argument("--joint-names", type=_names, default=(), metavar="J1,J2,...",
                        help="proprio joints in order (positions, then velocities); default: the names on "
                             "joint_states (refused if it carries several sets, e.g. an arm's and a gripper's)")
    parser.add_argument("--image-size", type=int, default=0, metavar="S",
                        help="px: every image must be SxS (the VLA's image_size); default: the first image's size")
    parser.add_argument("--instruction", default="",
                        help="task instruction of every episode; default: each START event's detail")
    parser.add_argument("--control-hz", type=float, default=20.0,
                        help="control rate the sessions ran at, rows per second (default: 20)")
    parser.add_argument("--max-age", type=float, default=0.2, metavar="S",
                        help="an image or joint state older than this at a step is missing: the episode is dropped "
                             "(default: 0.2 s)")
    parser.add_argument("--namespace", default="",
                        help="the session's ROS namespace in the bags (default: where the one chunk_request topic is)")


def run(args: argparse.Namespace) -> int:
    from rlt.bags.dataset import BuildConfig, build_dataset

    cfg = BuildConfig(cameras=args.cameras, joint_names=args.joint_names, image_size=args.image_size,
                      instruction=args.instruction, control_hz=args.control_hz, max_age_s=args.max_age,
                      namespace=args.namespace)
    info = build_dataset(args.bags, args.out, cfg, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"wrote {info['episodes']} episodes ({info['steps']} steps: {info['successes']} successes, "
          f"{info['failures']} failures, {info['timeouts']} timeouts; {info['human_steps']} human steps in "
          f"{info['intervened_episodes']} episodes; {len(info['dropped'])} dropped) to {args.out}")
    print(f"cameras {','.join(info['cameras'])} at {info['image_size']} px, joints {','.join(info['joint_names'])} "
          f"(proprio {2 * len(info['joint_names'])}), actions {','.join(info['axis_names'])}")
    return 0
