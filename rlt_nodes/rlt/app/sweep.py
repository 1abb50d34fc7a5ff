"""Sweeps of the in-process session (`rlt.app.inprocess`): several configs, one process each, and their spread.

This module owns how runs are spread over processes (one thread each, so `jobs` runs share the cores fairly) and
the aggregate: mean, standard deviation and range of each figure over all runs, and the spread of the per-build
means (builds = the distinct models, e.g. VLA + token retrained with other seeds). It must not import rclpy.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rlt.app.inprocess import InProcessConfig

FIGURES = ("throughput_ratio", "rlt_success", "rlt_median", "base_success")


def _one(cfg: InProcessConfig) -> dict[str, Any]:
    """Run one config in this (pool) process; the figures FIGURES plus what identifies the run."""
    from rlt.app.inprocess import run_inprocess

    result = run_inprocess(cfg, log=lambda _: None)
    return {"model": cfg.model_path, "rl_seed": result["rl"]["seed"], "seeds": result["seeds"],
            "operator": result["operator"], "state": result["state"], "throughput_ratio": result["throughput_ratio"],
            "throughput_ratio_ci95": result["ci95"]["throughput_ratio"],
            "rlt_success": result["rlt"]["success_rate"], "rlt_median": result["rlt"]["median_steps_success"],
            "base_success": result["base"]["success_rate"], "wall_s": result["wall_s"]}


def run_sweep(configs: Sequence[InProcessConfig], jobs: int = 2,
              on_run: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Every config's figures (`runs`, in order) and their aggregate (`aggregate`, `per_build`); `on_run` gets
    each run's figures as it finishes (a sweep cut short keeps what it measured)."""
    if not configs:
        raise ValueError("run_sweep: no config")
    if jobs < 1:
        raise ValueError(f"jobs={jobs}: must be >= 1")
    if jobs > 1:  # one core per run: each worker's torch and ONNX Runtime on one thread
        configs = [cfg.replace(threads=1) for cfg in configs]
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    runs: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        if jobs > 1:
            pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(jobs))
        for run in pool.imap(_one, configs, chunksize=1) if jobs > 1 else map(_one, configs):
            runs.append(run)
            if on_run is not None:
                on_run(run)
    return {"runs": runs, **aggregate(runs)}


def aggregate(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """mean / std / min / max of FIGURES over the runs, and the per-build means with their spread."""
    out: dict[str, Any] = {"aggregate": {}, "per_build": {}}
    for name in FIGURES:
        values = np.array([r[name] for r in runs], np.float64)
        out["aggregate"][name] = {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1))
                                  if len(values) > 1 else 0.0, "min": float(values.min()), "max": float(values.max())}
    for model in dict.fromkeys(r["model"] for r in runs):
        mine = [r for r in runs if r["model"] == model]
        out["per_build"][model] = {name: float(np.mean([r[name] for r in mine])) for name in FIGURES}
    return out


def format_sweep(result: dict[str, Any]) -> str:
    """A table of every run, then mean ± std [min, max] of each figure and the per-build means."""
    runs = result["runs"]
    lines = [f"sweep: {len(runs)} runs, evaluated on the {runs[0]['seeds']}, operator {runs[0]['operator']}",
             "| model | RL seed | ratio (95 % CI) | RLT success | RLT median | base success |",
             "|---|---|---|---|---|---|"]
    for r in runs:
        lo, hi = r["throughput_ratio_ci95"]
        lines.append(f"| {r['model']} | {r['rl_seed']} | {r['throughput_ratio']:.2f}x ({lo:.2f}-{hi:.2f}) | "
                     f"{r['rlt_success']:.2f} | {r['rlt_median']:.0f} | {r['base_success']:.2f} |")
    for name, a in result["aggregate"].items():
        lines.append(f"{name}: {a['mean']:.3f} ± {a['std']:.3f} [{a['min']:.3f}, {a['max']:.3f}]")
    builds = result["per_build"]
    if len(builds) > 1:
        means = [b["throughput_ratio"] for b in builds.values()]
        lines.append(f"ratio per build: {', '.join(f'{m:.2f}x' for m in means)} (spread {max(means) - min(means):.2f})")
    return "\n".join(lines)
