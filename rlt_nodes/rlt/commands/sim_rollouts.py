"""`rlt sim rollouts`: record the base VLA's own episodes (with exploration noise) into an MCAP rosbag2 dataset."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vla", type=Path, default=Path("artifacts/vla/vla.pt"), help="VLA checkpoint to roll out")
    parser.add_argument("--out", type=Path, default=None,
                        help="new dataset folder (default: artifacts/rollouts/PRESET)")
    parser.add_argument("--preset", default="main", help="difficulty preset: easy, main, hard (default: main)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a RolloutConfig field, e.g. episodes=200 (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from rlt.models.config import config_from_overrides
    from rlt.models.recipe import record_vla_rollouts
    from rlt.sim.config import RolloutConfig
    from rlt.sim.demos import read_dataset_info

    cfg = config_from_overrides(RolloutConfig, args.set)
    out = args.out or Path("artifacts/rollouts") / args.preset
    record_vla_rollouts(args.vla, out, cfg, args.preset, progress=not args.quiet)
    info = read_dataset_info(out)
    own = info["successes_attempted"] - info["handover_successes"]
    print(f"wrote {info['episodes']} episodes ({info['steps']} steps) to {out}: the policy succeeded in {own}, "
          f"an operator finished {info['handover_successes']} of the {info['handovers']} it left at the time limit")
    return 0
