"""`rlt bench sweep`: the in-process session over RL seeds x independent artifact builds: mean and spread."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rlt.commands.bench_session import add_in_process_arguments

    parser.add_argument("--models", nargs="+", default=["artifacts/vla.onnx", "artifacts/vla-s1.onnx"],
                        help="one ONNX per independent build (rlt session --set session.build_seed=N writes "
                             "artifacts/vla-sN.onnx)")
    parser.add_argument("--rl-seeds", nargs="+", type=int, default=[0, 1, 2], help="RL seeds (rl.seed) per build")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, one process each (default 2)")
    parser.add_argument("--out", default="runs/sweep.json", help="every run's figures and the aggregate (JSON)")
    add_in_process_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from rlt.app.sweep import format_sweep, run_sweep
    from rlt.commands.bench_session import in_process_config

    configs = [in_process_config(args, model, (f"rl.seed={seed}",)) for model in args.models for seed in args.rl_seeds]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done: list[dict] = []

    def keep(run: dict) -> None:  # each finished run is saved at once
        done.append(run)
        out.write_text(json.dumps({"runs": done}, indent=1, default=float))
        print(f"[bench sweep] {len(done)}/{len(configs)}: {run['model']} RL seed {run['rl_seed']}: "
              f"{run['throughput_ratio']:.2f}x in {run['wall_s']:.0f} s", flush=True)

    result = run_sweep(configs, jobs=args.jobs, on_run=keep)
    out.write_text(json.dumps(result, indent=1, default=float))
    print(format_sweep(result))
    print(f"[bench sweep] figures of every run: {out}")
    return 0
