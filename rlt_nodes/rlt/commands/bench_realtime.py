"""`rlt bench realtime`: the robot session against the simulated arm at wall-clock speed (`rlt.bench.realtime`)."""

from __future__ import annotations

import argparse

from rlt import overrides

SECTIONS: overrides.Sections = {"rl": "rlt.rl.config:RLConfig"}  # the params file's rl block (actor and learner)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rlt.bench.realtime import RealtimeConfig

    d = RealtimeConfig()
    parser.add_argument("--minutes", type=float, default=d.minutes,
                        help=f"wall-clock minutes of online RL, the learner at full speed (default {d.minutes:g})")
    parser.add_argument("--episodes", type=int, default=d.episodes,
                        help=f"judged evaluation episodes per policy, base VLA then RLT (default {d.episodes})")
    parser.add_argument("--seeds", choices=("evaluation", "tuning"), default=d.seeds,
                        help="evaluation seed range of rlt.seeds (default: evaluation; tuning to choose settings)")
    parser.add_argument("--model", default=d.model_path,
                        help="VLA + RL-token ONNX (default: build or reuse the sim session's, artifacts/vla.onnx)")
    parser.add_argument("--out", default=d.out_dir, help=f"output folder (default {d.out_dir})")
    parser.add_argument("--record", action="store_true", help="also run the session's bag recorder")
    overrides.add_set_argument(parser, SECTIONS, "rl.sigma=0.05",
                               note="defaults are the robot session's (launch/config/robot.yaml's rl block)")


def run(args: argparse.Namespace) -> int:
    from rlt.bench.realtime import RealtimeConfig, Rehearsal, format_report, readme_table

    rl = tuple(f"{o.field}={o.text}" for o in overrides.parse(args.set, SECTIONS))
    cfg = RealtimeConfig(minutes=args.minutes, episodes=args.episodes, seeds=args.seeds, model_path=args.model,
                         out_dir=args.out, record=args.record, rl=rl)
    summary = Rehearsal(cfg).run()
    print(format_report(summary))
    print(f"\nfor the README:\n\n{readme_table(summary)}\n")
    print(f"[realtime] summary: {cfg.out_dir}/summary.json")
    return 0
