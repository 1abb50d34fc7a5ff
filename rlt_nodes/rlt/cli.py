"""`rlt` command line: one entry point, subcommands registered in `COMMANDS`.

Each command lives in a module under `rlt.commands` exposing `add_arguments(parser)` and `run(args) -> int`.
Those modules keep their top-level imports light (heavy imports such as torch or mujoco go inside `run`), so
`rlt --help` stays fast. This module owns only the command table and the dispatch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# command path -> (module under rlt.commands, one-line help)
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("env",): ("env", "check the installation: versions, ROS environment, rendering, ONNX Runtime providers"),
    ("session",): ("session", "the main job: build artifacts, train RLT online in the sim session, evaluate, report"),
    ("launch",): ("launch", "start a session's nodes as separate processes (ros2 launch for pip-only machines)"),
    ("sim", "demos"): ("sim_demos", "record scripted-teleop demonstrations into an MCAP rosbag2 dataset"),
    ("sim", "rollouts"): ("sim_rollouts", "record the base VLA's own episodes (the RL token's goal data) as a dataset"),
    ("dataset", "build"): ("dataset_build", "turn session recordings (recorder bags, sim or robot) into a training "
                                            "dataset"),
    ("train", "vla"): ("train_vla", "behaviour-clone the base VLA on recorded demonstrations"),
    ("train", "token"): ("train_token", "train the RL-token encoder-decoder on the frozen VLA's embeddings"),
    ("train", "image-features"): ("train_image_features",
                                  "train the no-RL-token ablation's CNN image encoder (autoencoder on demo frames)"),
    ("export",): ("export", "export VLA + RL-token (or image-feature) encoder as one ONNX graph on the VLA contract"),
    ("diagnose", "token"): ("diagnose_token", "RL-token reconstruction (real/zero/shuffled) and linear pose probe"),
    ("diagnose", "image-features"): ("diagnose_image_features",
                                     "image-feature reconstruction (own/shuffled) and the same linear pose probe"),
    ("diagnose", "vla"): ("diagnose_vla", "closed-loop success and duration of the VLA vs the scripted expert"),
    ("bench", "sim"): ("bench_sim", "env steps/s with 0, 1, 2 cameras and expert success per noise level"),
    ("bench", "learner"): ("bench_learner", "learner updates/s vs a plain PyTorch TD3 loop, and matmul GFLOP/s"),
    ("bench", "vla"): ("bench_vla", "VLA forward latency p50/p99, ONNX Runtime vs PyTorch"),
    ("bench", "session"): ("bench_session", "the sim session in one process (no ROS): RLT vs base throughput"),
    ("bench", "sweep"): ("bench_sweep", "the in-process session over RL seeds x independent builds: mean and spread"),
    ("bench", "realtime"): ("bench_realtime", "the robot session against the simulated arm at wall-clock speed: "
                                              "fresh-chunk share, stage latencies, RLT / base"),
    ("bench", "bag"): ("bench_bag", "bag recording MB/s and msgs/s at the sim session's rates (2 cameras), headroom"),
    ("report", "readme"): ("report_readme", "put a session's headline table (summary.json) into the README"),
    ("bag", "record"): ("bag_record", "record the session's topics into a rosbag2 MCAP bag (bounded memory, flushed)"),
    ("bag", "replay"): ("bag_replay", "replay a bag at its recorded timing under sim time, with a shadow actor"),
    ("bag", "eval"): ("bag_eval", "run an actor checkpoint on a bag's VLA outputs: chunk differences, critic values"),
    ("bag", "info"): ("bag_info", "topics, types, counts, type hashes, QoS and recording statistics of a bag"),
    ("bag", "repair"): ("bag_repair", "make an interrupted recording readable again, up to its last flush"),
    ("robot", "cameras"): ("robot_cameras", "list the connected RealSense cameras and their serial numbers"),
    ("robot", "event"): ("robot_event", "send an operator command (start, reset, handoff, success, failure)"),
}

GROUP_HELP: dict[tuple[str, ...], str] = {
    ("sim",): "simulator tools: demonstrations and base-policy rollouts",
    ("bench",): "benchmarks that print figures against a baseline measured in the same run",
    ("dataset",): "training datasets from session recordings",
    ("train",): "train the base VLA, the RL-token encoder and the no-RL-token ablation's image encoder",
    ("diagnose",): "diagnostics of trained models",
    ("bag",): "record, replay and evaluate rosbags (MCAP)",
    ("robot",): "on-robot helpers: cameras, operator commands",
    ("report",): "reports of session runs",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlt",
        description="RL tokens (RLT) on ROS 2: online RL that edits a frozen VLA's action chunks.",
    )
    root = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups: dict[tuple[str, ...], argparse._SubParsersAction] = {(): root}
    for path, (module, help_text) in COMMANDS.items():
        for depth in range(1, len(path)):
            prefix = path[:depth]
            if prefix not in groups:
                group = groups[path[: depth - 1]].add_parser(prefix[-1], help=GROUP_HELP.get(prefix, ""))
                groups[prefix] = group.add_subparsers(dest="_".join(prefix), metavar="COMMAND", required=True)
        sub = groups[path[:-1]].add_parser(path[-1], help=help_text, description=help_text)
        mod = importlib.import_module(f"rlt.commands.{module}")
        mod.add_arguments(sub)
        sub.set_defaults(_module=mod)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._module.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (ValueError, OSError) as exc:  # bad input or a missing file: one clear line, no traceback
        print(f"rlt {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
