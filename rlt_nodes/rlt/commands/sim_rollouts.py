"""`rlt sim rollouts`: record the base VLA's own episodes (with exploration noise) into an MCAP rosbag2 dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from rlt import overrides

SECTIONS: overrides.Sections = {"rollout": "rlt.sim.config:RolloutConfig"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vla", type=Path, default=Path("artifacts/vla/vla.pt"), help="VLA checkpoint to roll out")
    parser.add_argument("--out", type=Path, default=None,
                        help="new dataset folder (default: artifacts/rollouts/PRESET)")
    parser.add_argument("--preset", default="main", help="difficulty preset: easy, main, hard (default: main)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    overrides.add_set_argument(parser, SECTIONS, "rollout.episodes=200")


def run(args: argparse.Namespace) -> int:
    from rlt.app.recipe import record_vla_rollouts
    from rlt.sim.demos import read_dataset_info

    cfg = overrides.build(SECTIONS, args.set)["rollout"]
    out = args.out or Path("artifacts/rollouts") / args.preset
    record_vla_rollouts(args.vla, out, cfg, args.preset, progress=not args.quiet)
    info = read_dataset_info(out)
    own = info["successes_attempted"] - info["handover_successes"]
    print(f"wrote {info['episodes']} episodes ({info['steps']} steps) to {out}: the policy succeeded in {own}, "
          f"an operator finished {info['handover_successes']} of the {info['handovers']} it left at the time limit")
    return 0
