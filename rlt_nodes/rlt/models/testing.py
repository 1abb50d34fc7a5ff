"""Tiny configs and synthetic demonstrations for fast tests of the model code (no simulator, seconds on a CPU).

This module owns only test fixtures' raw material; nothing in the training or serving path imports it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rlt.models.config import ImageFeaturesConfig, TokenConfig, VlaConfig, VlaTrainConfig


@dataclasses.dataclass(frozen=True)
class SyntheticEpisode:
    """Has the fields of `rlt.sim.demos.DemoEpisode` that training reads."""

    images: dict[str, np.ndarray]  # camera -> uint8[T, S, S, 3]
    proprio: np.ndarray  # float32[T, P]
    actions: np.ndarray  # float32[T, D]
    tip_offset: np.ndarray  # float32[T, 3]
    success: bool
    duration: int
    instruction: str


def tiny_vla_config(**changes: object) -> VlaConfig:
    """A VLA with 16 px images, 4 patches per camera, width 16, 1 layer, H = 6."""
    values = {"image_size": 16, "patch_size": 8, "stem_stride": 4, "stem_channels": 4, "d_model": 16, "layers": 1,
              "heads": 2, "mlp_ratio": 2, "chunk_len": 6}
    return VlaConfig(**{**values, **changes})


def tiny_train_config(**changes: object) -> VlaTrainConfig:
    values = {"steps": 4, "batch_size": 8, "warmup_steps": 1, "checkpoint_every": 2, "shift_pixels": 1}
    return VlaTrainConfig(**{**values, **changes})


def tiny_token_config(**changes: object) -> TokenConfig:
    values = {"token_dim": 8, "slots": 1, "layers": 1, "heads": 2, "mlp_ratio": 2, "steps": 4, "batch_size": 8,
              "warmup_steps": 1, "checkpoint_every": 2}
    return TokenConfig(**{**values, **changes})


def tiny_image_features_config(**changes: object) -> ImageFeaturesConfig:
    """Two convolutions of 4 and 8 channels, 8 features, 8 px reconstructions."""
    values = {"feature_dim": 8, "channels": (4, 8), "recon_size": 8, "steps": 4, "batch_size": 8,
              "warmup_steps": 1, "checkpoint_every": 2, "shift_pixels": 1, "stats_frames": 16}
    return ImageFeaturesConfig(**{**values, **changes})


def synthetic_episodes(cfg: VlaConfig, episodes: int = 4, steps: int = 12, seed: int = 0) -> list[SyntheticEpisode]:
    """Episodes whose images show a bright square at a position that drifts with a per-episode offset.

    The actions move toward the square and `tip_offset` is the square's offset, so a model has something to learn.
    """
    rng = np.random.default_rng(seed)
    s = cfg.image_size
    out = []
    for k in range(episodes):
        start = rng.uniform(-1.0, 1.0, 2)
        offsets = start[None] * np.linspace(1.0, 0.1, steps)[:, None]  # float64[T, 2]
        images = {}
        for c, camera in enumerate(cfg.cameras):
            frames = np.full((steps, s, s, 3), 40 + 20 * c, dtype=np.uint8)
            for t, (ox, oy) in enumerate(offsets):
                row, col = int((oy + 1) / 2 * (s - 4)), int((ox + 1) / 2 * (s - 4))
                frames[t, row : row + 4, col : col + 4] = 230
            images[camera] = frames
        actions = np.zeros((steps, cfg.action_dim), np.float32)
        actions[:, :2] = -0.5 * offsets * np.asarray(cfg.action_scale[:2])
        proprio = rng.normal(0.0, 0.01, (steps, cfg.proprio_dim)).astype(np.float32)
        tip = np.concatenate([offsets * 1e-3, np.zeros((steps, 1))], axis=1).astype(np.float32)
        out.append(SyntheticEpisode(images, proprio, actions, tip, k != 1, steps, cfg.instruction))
    return out
