"""Simulator benchmark: env throughput with 0, 1 and 2 cameras, and the scripted expert's success vs noise.

This module owns the measurement only. Throughput is control steps per second of `PegInsertEnv.step` driven by
the scripted expert in one process, including the expert, resets and rendering (what recording demos or running
an actor costs). The calibration part runs the expert without cameras at several perception-bias levels on the
same episodes (common random numbers). Run `python -m rlt.bench.sim` for the default report.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from rlt.sim.config import ExpertConfig, SimConfig
from rlt.sim.env import PegInsertEnv
from rlt.sim.expert import ScriptedTeleop, evaluate_expert, rollout

DEFAULT_CAMERA_SETS: tuple[tuple[str, ...], ...] = ((), ("front",), ("front", "wrist"))
DEFAULT_BIAS_LEVELS: tuple[float, ...] = (0.0, 0.0005, 0.001, 0.0015, 0.002)  # m, expert perception bias sigma


def bench_sim(
    preset: str = "main",
    image_size: int = 96,
    steps: int = 1000,
    camera_sets: Sequence[tuple[str, ...]] = DEFAULT_CAMERA_SETS,
    bias_levels: Sequence[float] = DEFAULT_BIAS_LEVELS,
    episodes: int = 100,
    mode: str = "full",
) -> dict[str, Any]:
    """Measure throughput (at least `steps` control steps per camera set) and expert success per bias level.

    Returns a dict: preset, image_size, mode, mujoco, gl (MUJOCO_GL), cpus, throughput (list of {cameras,
    steps, seconds, steps_per_s}), expert (list of {bias_xy_sigma, episodes, success_rate, mean_duration,
    max_penetration}).
    """
    throughput = []
    for cameras in camera_sets:
        cfg = SimConfig(preset=preset, image_size=image_size, cameras=tuple(cameras))
        with PegInsertEnv(cfg) as env:
            teleop = ScriptedTeleop(env, ExpertConfig())
            done, seed = 0, 0
            began = time.perf_counter()
            while done < steps:
                done += sum(1 for _ in rollout(env, teleop, seed, mode))
                seed += 1
            seconds = time.perf_counter() - began
        throughput.append({"cameras": list(cameras), "steps": done, "seconds": seconds, "steps_per_s": done / seconds})
    expert = []
    with PegInsertEnv(SimConfig(preset=preset, cameras=())) as env:
        for sigma in bias_levels:
            stats = evaluate_expert(env, ExpertConfig(bias_xy_sigma=sigma), episodes, mode)
            expert.append({"bias_xy_sigma": sigma, **dataclasses.asdict(stats)})
    return {
        "preset": preset,
        "image_size": image_size,
        "mode": mode,
        "mujoco": metadata.version("mujoco"),
        "gl": os.environ.get("MUJOCO_GL", ""),
        "cpus": os.cpu_count(),
        "throughput": throughput,
        "expert": expert,
    }


def format_report(report: dict[str, Any]) -> str:
    """A fixed-width table of `bench_sim`'s result."""
    lines = [
        f"simulator benchmark: preset {report['preset']}, {report['mode']} episodes, MuJoCo {report['mujoco']}, "
        f"MUJOCO_GL={report['gl']}, {report['cpus']} CPU(s)",
        f"{'cameras':<16} {'px':>4} {'steps':>6} {'steps/s':>8} {'ms/step':>8}",
    ]
    for row in report["throughput"]:
        cameras = "+".join(row["cameras"]) or "none"
        lines.append(
            f"{cameras:<16} {report['image_size']:>4} {row['steps']:>6} {row['steps_per_s']:>8.0f} "
            f"{1000 / row['steps_per_s']:>8.2f}"
        )
    lines.append(f"{'expert bias (mm)':<16} {'episodes':>8} {'success':>8} {'steps':>6} {'max pen (mm)':>13}")
    for row in report["expert"]:
        lines.append(
            f"{row['bias_xy_sigma'] * 1000:<16.1f} {row['episodes']:>8} {row['success_rate']:>8.0%} "
            f"{row['mean_duration']:>6.1f} {row['max_penetration'] * 1000:>13.3f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_report(bench_sim()))
