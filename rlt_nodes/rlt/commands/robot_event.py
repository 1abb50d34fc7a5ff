"""`rlt robot event <command>`: send an operator command to the chunk executor, like a gamepad button."""

from __future__ import annotations

import argparse
import subprocess

COMMANDS = ("start", "reset", "handoff", "success", "failure")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "command",
        choices=COMMANDS,
        help="start: begin an episode; reset: end it (again: begin the next); handoff: RL takes over; "
        "success / failure: end it with that outcome",
    )
    parser.add_argument("--namespace", default="", help="the robot's ROS namespace")


def run(args: argparse.Namespace) -> int:
    from rlt.app.launch import find_executable

    cmd = [str(find_executable("operator")), args.command]
    if args.namespace:
        cmd += ["--ros-args", "-r", f"__ns:={args.namespace}"]
    return subprocess.run(cmd).returncode
