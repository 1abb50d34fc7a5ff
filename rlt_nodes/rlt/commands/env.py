"""`rlt env`: report what this installation has, and fail when a required piece is missing."""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-render", action="store_true", help="skip the headless rendering check")


def _version(module: str) -> str:
    try:
        mod = __import__(module)
    except Exception as exc:
        return f"MISSING ({type(exc).__name__}: {exc})"
    return getattr(mod, "__version__", "?")


def run(args: argparse.Namespace) -> int:
    problems: list[str] = []
    print(f"python        {platform.python_version()} ({platform.machine()}, {os.cpu_count()} cpus)")
    for module in ("numpy", "torch", "mujoco", "onnxruntime", "rosbags"):
        v = _version(module)
        print(f"{module:<13} {v}")
        if v.startswith("MISSING"):
            problems.append(module)
    import onnxruntime
    import torch

    print(f"torch threads {torch.get_num_threads()}, cuda available: {torch.cuda.is_available()}")
    print(f"ORT providers {', '.join(onnxruntime.get_available_providers())}")
    for var in (
        "RMW_IMPLEMENTATION",
        "ROS_AUTOMATIC_DISCOVERY_RANGE",
        "ROS_DOMAIN_ID",
        "FASTDDS_DEFAULT_PROFILES_FILE",
        "MUJOCO_GL",
    ):
        print(f"{var:<30} {os.environ.get(var, '(unset)')}")
    if os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") != "LOCALHOST":
        print("  note: discovery is not confined to loopback (source ros_ws/env.sh)")
    for pkg in ("rclpy", "rlt_msgs", "rlt_nodes"):
        found = importlib.util.find_spec(pkg) is not None
        print(f"{pkg:<13} {'found' if found else 'NOT FOUND (run: bash ros_ws/setup.sh && source ros_ws/env.sh)'}")
        if not found:
            problems.append(pkg)
    if not args.no_render:
        try:
            import mujoco

            model = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom size='.1'/></worldbody></mujoco>")
            with mujoco.Renderer(model, 8, 8) as renderer:
                renderer.update_scene(mujoco.MjData(model))
                renderer.render()
            print(f"rendering     ok (MUJOCO_GL={os.environ.get('MUJOCO_GL', 'default')})")
        except Exception as exc:
            print(f"rendering     FAILED: {exc}")
            problems.append("rendering")
    if problems:
        print(f"problems: {', '.join(problems)}")
        return 1
    print("all good")
    return 0
