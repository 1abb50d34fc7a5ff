"""Demonstrations as training frames: every control step of every episode with its behaviour-cloning target.

This module owns the flattening of demo episodes (`rlt.sim.demos.DemoEpisode`, or anything with the same
fields) into arrays (`Frames`), the per-frame target chunk (the next H labelled actions, masked past the
episode's end), the episode-level train / held-out split shared by the VLA and the RL-token trainers, and the
image-shift augmentation. It does not import MuJoCo; reading the MCAP file is `rlt.sim.demos`' job.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F


class Episode(Protocol):
    """The fields of a demonstration episode this module reads (see `rlt.sim.demos.DemoEpisode`)."""

    images: dict[str, np.ndarray]  # camera -> uint8[T, S, S, 3]
    proprio: np.ndarray  # float32[T, P]
    actions: np.ndarray  # float32[T, D], clean labels
    tip_offset: np.ndarray  # float32[T, 3], privileged (x, y [m], yaw error [rad]) for probes only
    success: bool


@dataclasses.dataclass
class Frames:
    """All control steps of a set of episodes, flattened along N."""

    images: np.ndarray  # uint8[N, K, S, S, 3], cameras in the requested order
    proprio: np.ndarray  # float32[N, P], physical units
    chunks: np.ndarray  # float32[N, H, D], physical units, zero past the end of the episode
    chunk_mask: np.ndarray  # bool[N, H], False past the end of the episode
    tip_offset: np.ndarray  # float32[N, 3], privileged, for probes
    episode: np.ndarray  # int64[N], index of the source episode in the list given to `frames_from_episodes`
    final_proprio: np.ndarray  # float32[N, P], proprio at the last step of the frame's episode (hindsight goal)
    success: np.ndarray  # bool[N], the frame's episode succeeded (its final pose is an inserted pose)

    def __len__(self) -> int:
        return len(self.proprio)

    def subset(self, keep: np.ndarray) -> Frames:
        """The frames where the bool[N] `keep` is True (or at the int indices `keep`)."""
        return Frames(*(getattr(self, f.name)[keep] for f in dataclasses.fields(self)))

    def of_episodes(self, episodes: Sequence[int] | np.ndarray) -> Frames:
        return self.subset(np.isin(self.episode, np.asarray(episodes)))

    @classmethod
    def concat(cls, parts: Sequence[Frames]) -> Frames:
        """The frames of all `parts` in order; episode indices are shifted so that parts never share one."""
        shifted, offset = [], 0
        for part in parts:
            shifted.append(dataclasses.replace(part, episode=part.episode + offset))
            offset += int(part.episode.max()) + 1 if len(part) else 0
        return cls(*(np.concatenate([getattr(p, f.name) for p in shifted]) for f in dataclasses.fields(cls)))


def load_episodes(path: str | Path) -> list[Any]:
    """The episodes of the dataset at `path` (a rosbag2 folder written by `rlt.sim.demos.record_demos`), or of
    every dataset directly inside `path`, in name order (`rlt.app.recipe.record_vla_demos` writes those)."""
    from rlt.sim.demos import load_demos  # deferred: the MCAP reader is only needed here

    path = Path(path)
    if (path / "metadata.yaml").is_file():
        return list(load_demos(path))
    parts = sorted(p for p in path.iterdir() if (p / "metadata.yaml").is_file()) if path.is_dir() else []
    if not parts:
        raise FileNotFoundError(f"no demonstration dataset at {path}; record one with `rlt train vla --record-demos`"
                                " (the calibrated recipe) or `rlt sim demos`")
    return [episode for part in parts for episode in load_demos(part)]


def frames_from_episodes(episodes: Sequence[Episode], cameras: Sequence[str], horizon: int) -> Frames:
    """Flatten `episodes` into `Frames` with H = `horizon` step target chunks."""
    if not episodes:
        raise ValueError("no demonstration episodes")
    lengths = [len(ep.actions) for ep in episodes]
    first = episodes[0]
    missing = [c for c in cameras if c not in first.images]
    if missing:
        raise ValueError(f"demonstrations have no camera(s) {', '.join(missing)}; they have {', '.join(first.images)}")
    n, size = sum(lengths), first.images[cameras[0]].shape[1:]
    images = np.empty((n, len(cameras), *size), dtype=np.uint8)
    chunks = np.zeros((n, horizon, first.actions.shape[1]), dtype=np.float32)
    mask = np.zeros((n, horizon), dtype=bool)
    start = 0
    for ep, t_len in zip(episodes, lengths, strict=True):
        for k, camera in enumerate(cameras):
            if ep.images[camera].shape[1:] != size:
                raise ValueError(f"camera {camera}: image shape {ep.images[camera].shape[1:]}, expected {size}")
            images[start : start + t_len, k] = ep.images[camera]
        for t in range(t_len):
            h = min(horizon, t_len - t)
            chunks[start + t, :h] = ep.actions[t : t + h]
            mask[start + t, :h] = True
        start += t_len
    return Frames(
        images=images,
        proprio=np.concatenate([ep.proprio for ep in episodes]).astype(np.float32),
        chunks=chunks,
        chunk_mask=mask,
        tip_offset=np.concatenate([ep.tip_offset for ep in episodes]).astype(np.float32),
        episode=np.repeat(np.arange(len(episodes)), lengths),
        final_proprio=np.repeat(np.stack([_final_proprio(ep) for ep in episodes]), lengths, axis=0).astype(np.float32),
        success=np.repeat(np.array([bool(ep.success) for ep in episodes]), lengths),
    )


def split_episodes(n_episodes: int, holdout_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) episode indices: a seeded permutation, at least one episode in each when n >= 2."""
    order = np.random.default_rng(seed).permutation(n_episodes)
    n_out = round(n_episodes * holdout_fraction)
    if holdout_fraction > 0 and n_episodes >= 2:
        n_out = min(max(n_out, 1), n_episodes - 1)
    return np.sort(order[n_out:]), np.sort(order[:n_out])


def random_shift(images: Tensor, pad: int, generator: torch.Generator) -> Tensor:
    """uint8[B, K, S, S, 3] -> same shape, each image shifted by up to `pad` px (edge pixels replicated)."""
    if pad == 0:
        return images
    b, k, s = images.shape[:3]
    x = images.reshape(b * k, s, s, 3).permute(0, 3, 1, 2).float()  # float32[B*K, 3, S, S]
    x = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    offsets = torch.randint(0, 2 * pad + 1, (b * k, 2), generator=generator)
    rows = offsets[:, 0, None] + torch.arange(s)  # int64[B*K, S]
    cols = offsets[:, 1, None] + torch.arange(s)
    idx = torch.arange(b * k)[:, None, None]
    x = x.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]]  # float32[B*K, S, S, 3]
    return x.to(torch.uint8).reshape(b, k, s, s, 3)


def _final_proprio(episode: Episode) -> np.ndarray:
    """float32[P]: the episode's pose at its end event when its dataset stores it, else its last observation."""
    final = getattr(episode, "final_proprio", None)
    return episode.proprio[-1] if final is None else final
