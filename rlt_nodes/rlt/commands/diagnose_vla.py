"""`rlt diagnose vla`: closed-loop success and episode length of the VLA vs the scripted expert, same episodes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_POLICY = Path("artifacts/vla/vla.pt")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy", type=Path, default=DEFAULT_POLICY, help="VLA checkpoint (.pt) or exported model (.onnx)"
    )
    parser.add_argument("--episodes", type=int, default=100, help="episodes (seeds SEED0 .. SEED0 + N - 1)")
    parser.add_argument("--mode", choices=("critical", "full"), default="critical", help="episode start")
    parser.add_argument("--seed0", type=int, help="first episode seed (default: rlt.app.evaluate.DEFAULT_SEED0)")
    parser.add_argument("--execute-steps", type=int, default=10, help="actions executed per chunk before re-planning")
    parser.add_argument("--preset", default="main", help="simulator difficulty preset")
    parser.add_argument("--no-expert", action="store_true", help="skip the scripted-expert baseline")
    parser.add_argument(
        "--goal-token", type=Path, metavar="TOKEN_PT",
        help="also run the scripted expert (no bias, no noise) on the goal entries of --policy, an .onnx exported "
             "with this RL-token checkpoint, instead of its privileged pose: does the RL state carry what the "
             "insertion needs, apart from the RL stage?",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from rlt.app.evaluate import DEFAULT_SEED0, evaluate_expert_baseline, evaluate_vla
    from rlt.sim.config import SimConfig

    seed0 = DEFAULT_SEED0 if args.seed0 is None else args.seed0
    policy = args.policy
    if policy.suffix == ".onnx":
        from rlt.models.onnx_vla import OnnxVla

        policy = OnnxVla(policy, providers="cpu")
    sim_cfg = SimConfig(preset=args.preset)
    results = {
        "vla": evaluate_vla(
            policy,
            args.episodes,
            args.mode,
            seed0,
            sim_cfg=sim_cfg,
            execute_steps=args.execute_steps,
            progress=not args.json,
        )
    }
    if not args.no_expert:
        results["expert"] = evaluate_expert_baseline(args.episodes, args.mode, seed0, sim_cfg=sim_cfg)
    if args.goal_token:
        if not hasattr(policy, "infer"):
            raise SystemExit("--goal-token needs --policy to be the exported .onnx (VLA + RL token)")
        from rlt.app.evaluate import goal_perception
        from rlt.models.rl_token import load_token
        from rlt.sim.config import ExpertConfig

        scale = load_token(args.goal_token).goal_scale.tolist()
        results["goal"] = evaluate_expert_baseline(
            args.episodes, args.mode, seed0, sim_cfg=sim_cfg,
            expert_cfg=ExpertConfig().without_errors(), perceive=goal_perception(policy, scale),
            every=args.execute_steps)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{args.mode}-phase episodes, preset {args.preset}, seeds {seed0}..{seed0 + args.episodes - 1}")
    print(f"  {'policy':<8} {'success':>8} {'median steps':>13} {'mean steps':>11}")
    for name, r in results.items():
        print(f"  {name:<8} {r['success_rate']:8.0%} {r['median_steps']:13.1f} {r['mean_steps']:11.1f}")
    return 0
