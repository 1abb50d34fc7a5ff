"""The gradient-step loop shared by the VLA and RL-token trainers: seeding, AdamW with warmup + cosine decay,
gradient clipping, a tqdm progress bar, periodic atomic checkpoints and exact resume.

The caller supplies the loss of one random batch and the checkpoint payload; this module owns everything about
*when* things happen. Resume restores the optimizer, the step, the batch-sampling generator and torch's global
RNG, so an interrupted run continues with the batches it would have drawn.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from rlt.models.checkpoint import save_checkpoint
from rlt.models.layers import cosine_lr


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Optimization schedule of one training run."""

    steps: int
    lr: float
    warmup_steps: int
    lr_min_ratio: float
    weight_decay: float
    grad_clip: float
    checkpoint_every: int
    seed: int


@dataclasses.dataclass(frozen=True)
class FitResult:
    """Summary of a finished run."""

    steps: int  # total steps done (including those before a resume)
    final_loss: float  # mean training loss over the last 50 steps of this session (nan if none ran)
    wall_s: float  # seconds spent in this session


def fit(
    model: nn.Module,
    batch_loss: Callable[[torch.Generator], Tensor],
    schedule: Schedule,
    checkpoint: Path,
    payload: Callable[[], dict[str, Any]],
    *,
    resume_from: dict[str, Any] | None = None,
    on_checkpoint: Callable[[int], str] | None = None,
    progress: bool = True,
    desc: str = "train",
) -> FitResult:
    """Minimize `batch_loss(generator)` over the trainable parameters of `model`.

    `payload()` returns the model-specific checkpoint entries; the loop adds "optimizer", "step", "generator"
    and "torch_rng". `resume_from` is such a checkpoint dict. `on_checkpoint(step)` may return a line to print
    (e.g. a validation loss) each time a checkpoint is written.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": schedule.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=schedule.lr,
    )
    generator = torch.Generator().manual_seed(schedule.seed)
    torch.manual_seed(schedule.seed)
    start = 0
    if resume_from is not None:
        optimizer.load_state_dict(resume_from["optimizer"])
        generator.set_state(resume_from["generator"])
        torch.set_rng_state(resume_from["torch_rng"])
        start = int(resume_from["step"])

    def save(step: int) -> None:
        save_checkpoint(checkpoint, {**payload(), "optimizer": optimizer.state_dict(), "step": step,
                                     "generator": generator.get_state(), "torch_rng": torch.get_rng_state()})

    losses: list[float] = []
    began = time.monotonic()
    bar = tqdm(range(start, schedule.steps), initial=start, total=schedule.steps, desc=desc, disable=not progress,
               dynamic_ncols=True)
    for step in bar:
        lr = schedule.lr * cosine_lr(step, schedule.steps, schedule.warmup_steps, schedule.lr_min_ratio)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        loss = batch_loss(generator)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{desc}: loss is {loss.item()} at step {step}; lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, schedule.grad_clip)
        optimizer.step()
        losses.append(loss.item())
        if step % 10 == 0:
            bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.4f}", lr=f"{lr:.2e}")
        done = step + 1
        if done % schedule.checkpoint_every == 0 or done == schedule.steps:
            model.eval()
            save(done)
            line = on_checkpoint(done) if on_checkpoint else ""
            if line and progress:
                bar.write(f"{desc} step {done}: {line}")
    bar.close()
    tail = losses[-50:]
    return FitResult(schedule.steps, sum(tail) / len(tail) if tail else float("nan"), time.monotonic() - began)


def set_threads(num_threads: int) -> None:
    """Set torch's intra-op thread count (0 = leave it)."""
    if num_threads > 0:
        torch.set_num_threads(num_threads)
