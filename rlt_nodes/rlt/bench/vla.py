"""Latency benchmark of the exported VLA: one forward pass (batch 1), as the VLA node runs it per chunk boundary.

This module owns the measurement: ONNX Runtime on CPU (and on CUDA when this onnxruntime has it), and, when the
checkpoints are given, the same graph in PyTorch on CPU as the baseline measured in the same run. A second ONNX
file (`baseline`, e.g. the project's single exported graph against a policy composed with its token by
`rlt.models.export.compose_onnx`) is timed in the same loop, its calls alternating with the first file's, so both
see the same background load. Every runtime sees the same random observations; the first `warmup` calls are not
timed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rlt.models.onnx_vla import CPU, CUDA, OnnxVla

Observation = tuple[dict[str, np.ndarray], np.ndarray]  # camera -> uint8[S, S, 3], proprio float32[P]


def bench_vla(
    onnx_path: str | Path,
    vla_checkpoint: str | Path | None = None,
    token_checkpoint: str | Path | None = None,
    *,
    baseline: str | Path | None = None,
    iterations: int = 200,
    warmup: int = 20,
    threads: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """Forward-pass latency per runtime: {"runtimes": {name: {p50_ms, p99_ms, mean_ms}}, ...}.

    Runtimes: "onnx_cpu", "onnx_cuda" (if available), "torch_cpu" (if both checkpoints are given; the second is
    the RL token's or the image-feature encoder's, whichever the ONNX file was exported with), and with a
    `baseline` ONNX file (same cameras, image size and proprio): "baseline_onnx_cpu" ("baseline_onnx_cuda"),
    timed alternately with the first file. Also returns "torch_over_onnx_cpu" (PyTorch p50 / ONNX CPU p50: > 1
    means ONNX Runtime is faster), with a baseline "onnx_over_baseline_cpu" (p50 ratio: > 1 means `onnx_path`
    is slower; "onnx_over_baseline_cuda" likewise) and "baseline_model_id"; and "threads", "iterations",
    "model_id", "cpus".
    """
    import onnxruntime as ort

    if iterations < 2 or warmup < 0:
        raise ValueError(f"iterations={iterations} must be >= 2 and warmup={warmup} >= 0")
    cpu_vla = OnnxVla(onnx_path, providers="cpu", threads=threads)
    spec = cpu_vla.spec
    rng = np.random.default_rng(seed)
    observations = [({c: rng.integers(0, 256, (spec.image_size, spec.image_size, 3), dtype=np.uint8)
                      for c in spec.cameras}, rng.normal(0.0, 0.01, spec.proprio_dim).astype(np.float32))
                    for _ in range(8)]
    base = None if baseline is None else OnnxVla(baseline, providers="cpu", threads=threads)
    if base is not None and (base.cameras, base.image_size, base.proprio_dim) != (spec.cameras, spec.image_size,
                                                                                 spec.proprio_dim):
        raise ValueError(f"baseline {baseline} reads cameras {','.join(base.cameras)} at {base.image_size} px and "
                         f"proprio [{base.proprio_dim}]; {onnx_path} reads {','.join(spec.cameras)} at "
                         f"{spec.image_size} px and [{spec.proprio_dim}]: compare models with the same inputs")
    runtimes = _time_alternating({"onnx_cpu": cpu_vla.infer, **({"baseline_onnx_cpu": base.infer} if base else {})},
                                 observations, iterations, warmup)
    if CUDA in ort.get_available_providers():
        cuda = {"onnx_cuda": OnnxVla(onnx_path, providers="cuda"),
                **({"baseline_onnx_cuda": OnnxVla(baseline, providers="cuda")} if baseline is not None else {})}
        runtimes.update(_time_alternating({name: vla.infer for name, vla in cuda.items() if vla.provider == CUDA},
                                          observations, iterations, warmup))
    result: dict[str, Any] = {"runtimes": runtimes, "threads": threads, "iterations": iterations,
                              "model_id": spec.model_id, "cpus": os.cpu_count(), "cpu_provider": CPU}
    if base is not None:
        result["baseline_model_id"] = base.model_id
        result["onnx_over_baseline_cpu"] = runtimes["onnx_cpu"]["p50_ms"] / runtimes["baseline_onnx_cpu"]["p50_ms"]
        if {"onnx_cuda", "baseline_onnx_cuda"} <= set(runtimes):
            result["onnx_over_baseline_cuda"] = (runtimes["onnx_cuda"]["p50_ms"]
                                                 / runtimes["baseline_onnx_cuda"]["p50_ms"])
    if vla_checkpoint is not None and token_checkpoint is not None:
        runtimes.update(_time_alternating({"torch_cpu": _torch_infer(vla_checkpoint, token_checkpoint, threads)},
                                          observations, iterations, warmup))
        result["torch_over_onnx_cpu"] = runtimes["torch_cpu"]["p50_ms"] / runtimes["onnx_cpu"]["p50_ms"]
    return result


def format_report(result: dict[str, Any]) -> str:
    """Table of `bench_vla`'s result."""
    lines = [f"VLA forward pass, batch 1, model {result['model_id']}, {result['threads']} thread(s), "
             f"{result['iterations']} timed calls ({result['cpus']} cpus)",
             f"  {'runtime':<18} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}"]
    for name, stats in result["runtimes"].items():
        lines.append(f"  {name:<18} {stats['p50_ms']:8.2f} {stats['p99_ms']:8.2f} {stats['mean_ms']:8.2f}")
    if "torch_over_onnx_cpu" in result:
        lines.append(f"  PyTorch / ONNX Runtime on CPU (p50): {result['torch_over_onnx_cpu']:.2f}x")
    if "onnx_over_baseline_cpu" in result:
        lines.append(f"  model {result['model_id']} / baseline {result['baseline_model_id']} on CPU (p50): "
                     f"{result['onnx_over_baseline_cpu']:.2f}x (calls alternate between the two)")
    if "onnx_over_baseline_cuda" in result:
        lines.append(f"  model {result['model_id']} / baseline {result['baseline_model_id']} on CUDA (p50): "
                     f"{result['onnx_over_baseline_cuda']:.2f}x")
    if "onnx_cuda" not in result["runtimes"]:
        lines.append("  (no CUDA execution provider in this onnxruntime: CUDA not measured)")
    return "\n".join(lines)


def _time_alternating(infers: dict[str, Callable[..., Any]], observations: list[Observation], iterations: int,
                      warmup: int) -> dict[str, dict[str, float]]:
    """Latency statistics per named runtime; each iteration calls every runtime once on the same observation, in
    an order that reverses every iteration (so none always runs right after another's cache misses)."""
    durations: dict[str, list[float]] = {name: [] for name in infers}
    order = list(infers)
    for i in range(warmup + iterations):
        images, proprio = observations[i % len(observations)]
        for name in order if i % 2 == 0 else order[::-1]:
            began = time.perf_counter()
            infers[name](images, proprio)
            if i >= warmup:
                durations[name].append(time.perf_counter() - began)
    stats = {}
    for name, seconds in durations.items():
        ms = np.array(seconds) * 1e3
        stats[name] = {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
                       "mean_ms": float(ms.mean())}
    return stats


def _torch_infer(vla_checkpoint: str | Path, token_checkpoint: str | Path,
                 threads: int) -> Callable[[dict[str, np.ndarray], np.ndarray], Any]:
    """PyTorch forward of the exported module, with the same inputs and outputs as `OnnxVla.infer`."""
    import torch

    from rlt.models.export import ExportedVla, load_encoder
    from rlt.models.vla import load_vla

    torch.set_num_threads(threads)
    model = ExportedVla(load_vla(vla_checkpoint), load_encoder(token_checkpoint)).eval()
    cameras = model.vla.cfg.cameras

    @torch.inference_mode()
    def infer(images: dict[str, np.ndarray], proprio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        inputs = [torch.from_numpy(images[c][None]) for c in cameras] + [torch.from_numpy(proprio[None])]
        chunk, token = model(*inputs)
        return chunk[0].numpy(), token[0].numpy()

    return infer
