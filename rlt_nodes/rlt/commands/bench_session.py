"""`rlt bench session`: the sim RLT session in one process (no ROS): RLT vs base throughput on common seeds."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rlt.sim.inprocess import InProcessConfig


def add_in_process_arguments(parser: argparse.ArgumentParser) -> None:
    """The options `rlt bench session` and `rlt bench sweep` share (defaults: rlt.sim.inprocess.InProcessConfig)."""
    from rlt.session import OPERATORS
    from rlt.sim.inprocess import InProcessConfig

    d = InProcessConfig()
    parser.add_argument("--params", default=None, help="session parameters (default: launch/config/sim.yaml)")
    parser.add_argument("--state", choices=("token", "oracle"), default=d.state,
                        help="RL state: the model's z_rl, or the sim's true tip-to-hole offset (an upper bound)")
    parser.add_argument("--minutes", type=float, default=d.rl_minutes,
                        help=f"critical-phase minutes of RL data (default {d.rl_minutes:g})")
    parser.add_argument("--episodes", type=int, default=d.eval_episodes,
                        help=f"evaluation episodes per policy (default {d.eval_episodes})")
    parser.add_argument("--seeds", choices=("tuning", "evaluation"), default=d.seeds,
                        help="evaluation seed range of rlt.seeds (default: tuning; evaluation is for final figures "
                             "only, never for choosing settings)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override an RL parameter (e.g. --set sigma=0.03 --set stride=2); repeatable")
    parser.add_argument("--operator", choices=tuple(OPERATORS), default=d.operator,
                        help="who may take over in training, as in `rlt session` (noisy: the params file's scripted "
                             "operator with a person's perception errors; privileged: the same on the true pose, "
                             "an upper bound; none: autonomous)")
    parser.add_argument("--set-human", action="append", default=[], metavar="NAME=VALUE",
                        help="override a scripted-human parameter (e.g. --set-human stall_steps=10); repeatable")


def in_process_config(args: argparse.Namespace, model: str, extra_sets: tuple[str, ...] = ()) -> InProcessConfig:
    """The InProcessConfig of the shared options for `model`, with further RL overrides appended."""
    from rlt.sim.inprocess import InProcessConfig

    cfg = InProcessConfig(model_path=model, state=args.state, rl_minutes=args.minutes, eval_episodes=args.episodes,
                          seeds=args.seeds, rl_overrides=(*args.set, *extra_sets), operator=args.operator,
                          human_overrides=tuple(args.set_human))
    return cfg.replace(params_file=args.params) if args.params else cfg


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="artifacts/vla.onnx", help="VLA + RL-token ONNX (built by rlt session)")
    add_in_process_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from rlt.sim.inprocess import format_report, run_inprocess

    print(format_report(run_inprocess(in_process_config(args, args.model))))
    return 0
