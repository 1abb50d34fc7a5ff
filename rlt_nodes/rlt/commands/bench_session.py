"""`rlt bench session`: the sim RLT session in one process (no ROS): RLT vs base throughput on common seeds."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="artifacts/vla.onnx", help="VLA + RL-token ONNX (built by rlt session)")
    parser.add_argument("--params", default=None, help="session parameters (default: launch/config/sim.yaml)")
    parser.add_argument("--state", choices=("token", "oracle"), default="token",
                        help="RL state: the model's z_rl, or the sim's true tip-to-hole offset (an upper bound)")
    parser.add_argument("--minutes", type=float, default=15.0, help="critical-phase minutes of RL data (default 15)")
    parser.add_argument("--episodes", type=int, default=150, help="evaluation episodes per policy (default 150)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override an RL parameter (e.g. --set sigma=0.03 --set stride=2); repeatable")
    from rlt.session import OPERATORS

    parser.add_argument("--operator", choices=tuple(OPERATORS), default="scripted",
                        help="who may take over in training, as in `rlt session` (default: the scripted operator of "
                             "the params file's sim_human block; none: autonomous)")
    parser.add_argument("--set-human", action="append", default=[], metavar="NAME=VALUE",
                        help="override a scripted-human parameter (e.g. --set-human stall_steps=10); repeatable")


def run(args: argparse.Namespace) -> int:
    from rlt.sim.inprocess import InProcessConfig, format_report, run_inprocess

    cfg = InProcessConfig(model_path=args.model, state=args.state, rl_minutes=args.minutes,
                          eval_episodes=args.episodes, rl_overrides=tuple(args.set),
                          operator=args.operator, human_overrides=tuple(args.set_human))
    if args.params:
        cfg = cfg.replace(params_file=args.params)
    print(format_report(run_inprocess(cfg)))
    return 0
