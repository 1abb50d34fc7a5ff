"""`rlt bag record`: run the `bag_recorder` node (own process) until Ctrl-C or --timeout; the bag closes cleanly."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--out", default="", help="bag folder to create (default: bags/rlt_<date_time>)")
    parser.add_argument("--topics", nargs="+", metavar="PATTERN",
                        help="glob patterns of topics (relative ones in --namespace); default: every RLT topic")
    parser.add_argument("--all", action="store_true", help="record every topic that appears (like ros2 bag record -a)")
    parser.add_argument("--exclude", nargs="+", default=[], metavar="PATTERN", help="glob patterns never recorded")
    parser.add_argument("--namespace", default="", help="ROS namespace of the session (one robot per namespace)")
    parser.add_argument("--flush-every", type=float, default=1.0, metavar="S",
                        help="make the bag durable this often; a crash loses at most this much (default: 1 s)")
    parser.add_argument("--queue-mb", type=float, default=512.0, help="memory bound of the write queue (default: 512)")
    parser.add_argument("--timeout", type=float, default=0.0, help="stop after this many seconds (default: Ctrl-C)")


def run(args: argparse.Namespace) -> int:
    import signal

    from rlt.app.launch import Supervisor, single
    from rlt.bags.recorder import RecorderConfig

    cfg = RecorderConfig(out=args.out, all_topics=args.all, exclude=tuple(args.exclude), queue_mb=args.queue_mb,
                         flush_every_s=args.flush_every, **({"topics": tuple(args.topics)} if args.topics else {}))
    out = cfg.resolved_out()
    params = {f"recorder.{k}": v for k, v in cfg.replace(out=str(out)).to_dict().items()}
    print(f"recording to {out} (Ctrl-C stops)", flush=True)
    supervisor = Supervisor([single("bag_recorder", "bag_recorder", params, args.namespace)])
    supervisor.run(args.timeout)
    code = supervisor.returncodes.get("bag_recorder", 1)
    return 0 if code in (0, -signal.SIGINT) else 1
