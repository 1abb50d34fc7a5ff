"""Behaviour cloning of the VLA on demonstrations (`train_vla`).

This module owns the BC objective (L1 between predicted and demonstrated action chunks, in normalized units,
masked past the end of each episode), the episode split it records in the checkpoint (so the RL-token trainer
and its probe use the same held-out episodes), and the checkpoint/resume protocol of a VLA run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rlt.models.checkpoint import load_checkpoint
from rlt.models.config import VlaConfig, VlaTrainConfig
from rlt.models.data import Episode, Frames, frames_from_episodes, load_episodes, random_shift, split_episodes
from rlt.models.trainer import FitResult, Schedule, fit, set_threads
from rlt.models.vla import CHECKPOINT_KIND, Vla

CHECKPOINT_NAME = "vla.pt"
_RESUME_MAY_CHANGE = frozenset({"steps", "checkpoint_every", "num_threads"})  # VlaTrainConfig fields


DemoSource = str | Path | Sequence[str | Path] | Sequence[Episode]  # dataset path(s), or loaded episodes


def demo_paths(demos: DemoSource) -> list[str]:
    """The dataset paths of `demos` ([] for episodes already in memory)."""
    if isinstance(demos, str | Path):
        return [str(demos)]
    return [str(d) for d in demos if isinstance(d, str | Path)]


def select_episodes(demos: DemoSource, successes_only: bool) -> list[Episode]:
    """The episodes of `demos` (dataset paths, concatenated in order, or loaded episodes), optionally successes only."""
    paths = demo_paths(demos)
    episodes = [ep for path in paths for ep in load_episodes(path)] if paths else list(demos)  # type: ignore[arg-type]
    if successes_only:
        episodes = [ep for ep in episodes if ep.success]
    if not episodes:
        raise ValueError(f"no {'successful ' if successes_only else ''}demonstration episodes in {demos}")
    return episodes


def bc_loss(model: Vla, images: Tensor, proprio: Tensor, chunks: Tensor, mask: Tensor, kind: str = "l1",
            weights: Tensor | None = None, cumulative: bool = False) -> Tensor:
    """Mean L1 or squared error over valid chunk entries, in normalized units.

    chunks float32[B, H, D] physical, mask bool[B, H], weights float32[D] per action axis (default 1).
    `cumulative` compares the running sums of the chunks (displacement since the chunk start) instead of the
    per-step deltas, so an error in an early step counts once for every later step it displaces.
    """
    pred, _ = model(images, proprio)  # float32[B, H, D] normalized
    diff = (pred - model.to_normalized(chunks)) * mask[..., None]
    if cumulative:
        diff = diff.cumsum(dim=1)
    err = diff.abs() if kind == "l1" else diff**2
    if weights is not None:
        err = err * weights
    err = err * mask[..., None]
    return err.sum() / (mask.sum() * pred.shape[-1]).clamp(min=1)


def axis_weights(frames: Frames, action_scale: Sequence[float], kind: str = "l1", cumulative: bool = False) -> Tensor:
    """float32[D] that give every action axis the same share of the loss at the start of training, mean 1.

    1 / std (L1) or 1 / variance (L2) of each normalized axis over valid chunk entries, measured in the space the
    loss compares (per-step deltas, or their running sums if `cumulative`).
    """
    targets = frames.chunks / np.asarray(action_scale, np.float32) * frames.chunk_mask[..., None]  # [N, H, D]
    if cumulative:
        targets = targets.cumsum(axis=1)
    std = np.maximum(targets[frames.chunk_mask].std(0), 1e-3)  # float32[D]
    inverse = 1.0 / (std if kind == "l1" else std**2)
    return torch.from_numpy((inverse / inverse.mean()).astype(np.float32))


def train_vla(
    demos: DemoSource,
    out_dir: str | Path,
    cfg: VlaConfig | None = None,
    train_cfg: VlaTrainConfig | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
) -> Path:
    """Train the VLA by BC on `demos`; returns the checkpoint path (`out_dir/vla.pt`, rewritten periodically).

    With `resume`, continue the run stored in `out_dir`: its configs must equal `cfg` / `train_cfg` except for
    `steps` (to extend a finished run; the cosine schedule follows the new total), `checkpoint_every` and
    `num_threads`.
    """
    cfg, train_cfg = cfg or VlaConfig(), train_cfg or VlaTrainConfig()
    set_threads(train_cfg.num_threads)
    checkpoint = Path(out_dir) / CHECKPOINT_NAME
    # a build stopped before its first checkpoint has nothing to resume: it starts over
    previous = _resumable(checkpoint, cfg, train_cfg) if resume and checkpoint.is_file() else None

    episodes = select_episodes(demos, train_cfg.successes_only)
    train_ids, holdout_ids = split_episodes(len(episodes), train_cfg.holdout_fraction, train_cfg.seed)
    frames = frames_from_episodes(episodes, cfg.cameras, cfg.chunk_len)
    del episodes
    _check_frames(frames, cfg)
    train, holdout = frames.of_episodes(train_ids), frames.of_episodes(holdout_ids)
    del frames

    torch.manual_seed(train_cfg.seed)
    model = Vla(cfg)
    model.set_proprio_stats(train.proprio.mean(0), train.proprio.std(0))
    if previous is not None:
        model.load_state_dict(previous["model"])
    data = _tensors(train)
    weights = (axis_weights(train, cfg.action_scale, train_cfg.loss, train_cfg.cumulative_loss)
               if train_cfg.balance_axes else None)

    def batch_loss(generator: torch.Generator) -> Tensor:
        idx = torch.randint(len(train), (train_cfg.batch_size,), generator=generator)
        images = random_shift(data["images"][idx], train_cfg.shift_pixels, generator)
        return bc_loss(model, images, data["proprio"][idx], data["chunks"][idx], data["mask"][idx],
                       train_cfg.loss, weights, train_cfg.cumulative_loss)

    def payload() -> dict[str, Any]:
        return {"kind": CHECKPOINT_KIND, "config": cfg.to_dict(), "model": model.state_dict(),
                "train_config": train_cfg.to_dict(), "demos": demo_paths(demos),
                "split": {"n_episodes": len(train_ids) + len(holdout_ids), "train": train_ids.tolist(),
                          "holdout": holdout_ids.tolist(), "successes_only": train_cfg.successes_only}}

    def validation(step: int) -> str:
        if not len(holdout):
            return ""
        loss = evaluate_bc_loss(model, holdout, train_cfg.loss, weights, train_cfg.cumulative_loss)
        return f"held-out {train_cfg.loss} {loss:.4f}"

    schedule = Schedule(train_cfg.steps, train_cfg.lr, train_cfg.warmup_steps, train_cfg.lr_min_ratio,
                        train_cfg.weight_decay, train_cfg.grad_clip, train_cfg.checkpoint_every, train_cfg.seed)
    result: FitResult = fit(model, batch_loss, schedule, checkpoint, payload, resume_from=previous,
                            on_checkpoint=validation, progress=progress, desc="train vla")
    if progress:
        print(f"VLA: {result.steps} steps, final train {train_cfg.loss} {result.final_loss:.4f}, {result.wall_s:.0f} s "
              f"-> {checkpoint}")
    return checkpoint


@torch.no_grad()
def evaluate_bc_loss(model: Vla, frames: Frames, kind: str = "l1", weights: Tensor | None = None,
                     cumulative: bool = False, batch_size: int = 256) -> float:
    """BC loss of `model` on `frames` (no augmentation), averaged over valid chunk entries."""
    model.eval()
    data = _tensors(frames)
    total, count = 0.0, 0.0
    for i in range(0, len(frames), batch_size):
        s = slice(i, i + batch_size)
        n = float(data["mask"][s].sum()) * model.cfg.action_dim
        loss = bc_loss(model, data["images"][s], data["proprio"][s], data["chunks"][s], data["mask"][s], kind, weights,
                       cumulative)
        total += loss.item() * n
        count += n
    return total / max(count, 1.0)


def _tensors(frames: Frames) -> dict[str, Tensor]:
    return {"images": torch.from_numpy(frames.images), "proprio": torch.from_numpy(frames.proprio),
            "chunks": torch.from_numpy(frames.chunks), "mask": torch.from_numpy(frames.chunk_mask)}


def _check_frames(frames: Frames, cfg: VlaConfig) -> None:
    size = frames.images.shape[2:4]
    if size != (cfg.image_size, cfg.image_size):
        raise ValueError(f"demonstration images are {size[0]}x{size[1]} px; VlaConfig.image_size={cfg.image_size}")
    if frames.proprio.shape[1] != cfg.proprio_dim:
        raise ValueError(f"demonstration proprio has {frames.proprio.shape[1]} entries; "
                         f"VlaConfig.proprio_dim={cfg.proprio_dim}")
    if frames.chunks.shape[2] != cfg.action_dim:
        raise ValueError(f"demonstration actions have {frames.chunks.shape[2]} axes; "
                         f"VlaConfig.action_dim={cfg.action_dim}")


def _resumable(checkpoint: Path, cfg: VlaConfig, train_cfg: VlaTrainConfig) -> dict[str, Any]:
    ckpt = load_checkpoint(checkpoint, CHECKPOINT_KIND)
    for name, saved, given in (("VlaConfig", ckpt["config"], cfg.to_dict()),
                               ("VlaTrainConfig", ckpt["train_config"], train_cfg.to_dict())):
        saved = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()}
        diff = sorted(k for k in given if saved.get(k) != given[k] and k not in _RESUME_MAY_CHANGE)
        if diff:
            raise ValueError(f"cannot resume {checkpoint}: {name} differs in "
                             + ", ".join(f"{k} (saved {saved.get(k)!r}, given {given[k]!r})" for k in diff))
    return ckpt
