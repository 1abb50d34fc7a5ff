"""`rlt launch <session>`: start a session's nodes as separate processes, like `ros2 launch` would."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", help="session name from launch/sessions.yaml (sim, robot, replay)")
    parser.add_argument("--params-file", type=Path, help="ROS 2 params YAML replacing the session's own"
                        " (its last layer, over any base files)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NODE:SECTION.FIELD=VALUE",
        help="override one parameter of one node: SECTION.FIELD names a config field as `--set` of the other "
        "commands does (the node's ROS parameter of that name), e.g. actor:rl.sigma=0.05; a plain parameter has no "
        "section (actor:model_path=vla.onnx); repeatable",
    )
    parser.add_argument("--namespace", default="", help="ROS namespace for every node (one robot per namespace)")
    parser.add_argument(
        "--foxglove",
        action="store_true",
        help="also run foxglove_bridge, a live view of the session in Foxglove: open ws://localhost:8765 there "
        "(its host, port and cameras: --set foxglove_bridge:port=8766)",
    )
    parser.add_argument("--log-dir", type=Path, help="write each node's output to LOG_DIR/<node>.log")
    parser.add_argument("--timeout", type=float, default=0.0, help="stop the session after this many seconds")
    parser.add_argument("--dry-run", action="store_true", help="print the command lines and exit")


def run(args: argparse.Namespace) -> int:
    from rlt.app.launch import Supervisor, load_session, parse_overrides, plan

    session = load_session(args.session)
    launches = plan(session, args.params_file, parse_overrides(args.set), args.namespace, args.foxglove)
    if args.dry_run:
        for launch in launches:
            print(" ".join(launch.cmd))
        return 0
    print(f"session {session.name}: {', '.join(x.node.name for x in launches)} (Ctrl-C stops all)")
    supervisor = Supervisor(launches, args.log_dir)
    code = supervisor.run(args.timeout)
    print(f"session {session.name} stopped: {supervisor.stop_reason}; exit codes {supervisor.returncodes}")
    return code
