"""`rlt bench bag`: bag recording MB/s and msgs/s at the sim session's rates (2 cameras), drops, writer headroom."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the session runs (default: 30)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_bag"), help="bag, logs and bench.json go here")
    parser.add_argument("--preset", default="main", help="sim difficulty preset (default: main)")


def run(args: argparse.Namespace) -> int:
    import json

    from rlt.bench.bags import format_report, session_throughput, writer_capacity

    session = session_throughput(args.seconds, args.out, args.preset)
    capacity = writer_capacity(Path(session["bag"]), args.out)
    print(format_report(session, capacity))
    (args.out / "bench.json").write_text(json.dumps({"session": session, "writer": capacity}, indent=1))
    return 0
