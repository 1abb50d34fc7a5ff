"""`rlt bench vla`: forward-pass latency of the exported VLA, ONNX Runtime (CPU, CUDA if any) vs PyTorch, and
optionally against a second ONNX file (`--baseline`: e.g. a composed graph against the project's single one)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_ONNX = Path("artifacts/vla.onnx")
DEFAULT_VLA = Path("artifacts/vla/vla.pt")
DEFAULT_TOKEN = Path("artifacts/token/token.pt")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--onnx", type=Path, default=DEFAULT_ONNX, help="exported VLA")
    parser.add_argument("--vla", type=Path, default=DEFAULT_VLA, help="VLA checkpoint for the PyTorch baseline")
    parser.add_argument("--token", type=Path, default=DEFAULT_TOKEN,
                        help="RL-token (or image-feature) checkpoint for the baseline")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch baseline")
    parser.add_argument("--baseline", type=Path,
                        help="a second rlt.vla/1 ONNX file with the same inputs, timed alternately with --onnx")
    parser.add_argument("--iterations", type=int, default=200, help="timed forward passes per runtime")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of each runtime")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from rlt.bench.vla import bench_vla, format_report

    with_torch = not args.no_torch and args.vla.is_file() and args.token.is_file()
    result = bench_vla(
        args.onnx,
        args.vla if with_torch else None,
        args.token if with_torch else None,
        baseline=args.baseline,
        iterations=args.iterations,
        threads=args.threads,
    )
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0
