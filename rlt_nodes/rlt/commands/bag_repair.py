"""`rlt bag repair BAG`: recover an interrupted recording (no metadata.yaml) up to its last flush, in place."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="rosbag2 folder of the interrupted recording")


def run(args: argparse.Namespace) -> int:
    from rlt.bags.io import repair_bag

    report = repair_bag(args.bag)
    if report is None:
        print(f"{args.bag} is complete: nothing to repair")
    else:
        print(f"{args.bag}: recovered {report.messages} messages; discarded {report.discarded_bytes} bytes written "
              "after the last flush")
    return 0
