"""Tiny configs and synthetic demonstrations for fast tests of the model code (no simulator, seconds on a CPU).

This module owns only test fixtures' raw material; nothing in the training or serving path imports it.
`write_dataset` stores synthetic episodes as a dataset folder in the demo layout (`rlt.sim.demos`), for tests of
commands that read datasets from disk. `CnnChunkPolicy` / `export_cnn_policy`: a chunk policy that is not this
project's VLA (a CNN and MLPs, no transformer), exported on the embeddings contract rlt.embed/1, for the tests of
"bring your own VLA".
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

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


def write_dataset(path: str | Path, episodes: Sequence[SyntheticEpisode], control_hz: int = 20) -> Path:
    """Write `episodes` (all with the same cameras) as a new dataset folder in the layout `rlt.sim.demos` reads
    (`rlt.models.data.load_episodes`); returns `path`. Labels are stored as human actions, stamps at `control_hz`."""
    from rlt.bags.io import BagWriter
    from rlt.sim.demos import METADATA_KEY, EpisodeWriter
    from rlt.types import Source

    path, period = Path(path), round(1e9 / control_hz)  # ns per control step
    cameras = tuple(episodes[0].images)
    half = episodes[0].proprio.shape[1] // 2  # proprio = joint positions, then their velocities
    with BagWriter(path) as bag:
        writer = EpisodeWriter(bag, cameras, period, [f"joint_{k}" for k in range(half)],
                               [f"a{d}" for d in range(episodes[0].actions.shape[1])])
        for k, ep in enumerate(episodes):
            writer.write(k, ep.images, ep.proprio, ep.actions, [Source.HUMAN] * len(ep.actions),
                         "success" if ep.success else "timeout", ep.instruction, ep.tip_offset)
        bag.set_metadata(METADATA_KEY, json.dumps({"source": "rlt.models.testing.write_dataset",
                                                   "episodes": len(episodes), "cameras": cameras,
                                                   "sim_config": {"cameras": cameras},
                                                   "instruction": episodes[0].instruction}))
    return path


class CnnChunkPolicy(torch.nn.Module):
    """A fake of another lab's policy: one CNN shared by two 16 px cameras, an MLP on the 12 proprio values, an MLP
    chunk head (H = 6 rows of 4 axes) over all the cells. Its embeddings are the CNN's 2x2 output cells of each
    camera and the proprio feature, each EMBED_DIM wide."""

    IMAGE_SIZE, PROPRIO_DIM, CHUNK_LEN, ACTION_DIM = 16, 12, 6, 4
    EMBED_DIM = 12  # E
    PREFIX_LEN = 2 * 4 + 1  # M: 2x2 cells per camera + the proprio token

    def __init__(self) -> None:
        super().__init__()
        nn, e = torch.nn, self.EMBED_DIM
        self.cnn = nn.Sequential(nn.Conv2d(3, 8, 4, stride=4), nn.ReLU(), nn.Conv2d(8, e, 2, stride=2), nn.Tanh())
        self.state = nn.Sequential(nn.Linear(self.PROPRIO_DIM, 32), nn.Tanh(), nn.Linear(32, e))
        self.head = nn.Sequential(nn.Linear(self.PREFIX_LEN * e, 64), nn.ReLU(),
                                  nn.Linear(64, self.CHUNK_LEN * self.ACTION_DIM))

    def forward(self, front: torch.Tensor, wrist: torch.Tensor, proprio: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """uint8[B, S, S, 3] x 2, float32[B, P] -> ref chunk float32[B, H, D] (m, rad), prefix float32[B, M, E]."""
        cells = [self.cnn(im.permute(0, 3, 1, 2).float() / 255.0).flatten(2).transpose(1, 2) for im in (front, wrist)]
        prefix = torch.cat([*cells, self.state(proprio)[:, None]], dim=1)  # float32[B, M, E]
        chunk = 0.004 * torch.tanh(self.head(prefix.flatten(1)))  # float32[B, H·D]
        return chunk.reshape(-1, self.CHUNK_LEN, self.ACTION_DIM), prefix


def export_cnn_policy(path: str | Path, seed: int = 0,
                      outputs: Sequence[str] = ("ref_chunk", "prefix_embeddings")) -> tuple[CnnChunkPolicy, Path]:
    """torch.onnx export of a CnnChunkPolicy (opset 18, not the project's 17; symbolic batch) to `path`; stamp its
    metadata with `rlt.models.embed.stamp_embed_metadata` to put it on the contract."""
    import warnings

    torch.manual_seed(seed)
    policy = CnnChunkPolicy().eval()
    s, p = CnnChunkPolicy.IMAGE_SIZE, CnnChunkPolicy.PROPRIO_DIM
    sample = (torch.zeros(1, s, s, 3, dtype=torch.uint8), torch.zeros(1, s, s, 3, dtype=torch.uint8),
              torch.zeros(1, p))
    names = ["image_front", "image_wrist", "proprio"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(policy, sample, str(path), input_names=names, output_names=list(outputs), opset_version=18,
                          dynamo=False, dynamic_axes={n: {0: "batch"} for n in [*names, *outputs]})
    return policy, Path(path)


def write_tiny_checkpoints(root: str | Path, proprio_mean: float | None = None, proprio_std: float = 0.5,
                           vla_name_in_token: str = "") -> tuple[Path, Path]:
    """An untrained tiny VLA (`tiny_vla_config`; proprio normalized by `proprio_mean`, default -1..1 over the
    entries, and `proprio_std`) and RL token saved as root/vla.pt, root/token.pt (the token names
    `vla_name_in_token` as its VLA checkpoint), for export and serving tests."""
    from rlt.models.checkpoint import save_checkpoint
    from rlt.models.rl_token import CHECKPOINT_KIND, RlToken
    from rlt.models.vla import Vla, save_vla

    root = Path(root)
    cfg = tiny_vla_config()
    vla = Vla(cfg)
    mean = np.linspace(-1, 1, cfg.proprio_dim) if proprio_mean is None else np.full(cfg.proprio_dim, proprio_mean)
    vla.set_proprio_stats(mean, np.full(cfg.proprio_dim, proprio_std))
    save_vla(root / "vla.pt", vla)
    token = RlToken(tiny_token_config(), cfg.d_model, cfg.prefix_len)
    save_checkpoint(root / "token.pt", {"kind": CHECKPOINT_KIND, "config": token.cfg.to_dict(),
                                        "model": token.state_dict(), "d_model": cfg.d_model,
                                        "prefix_len": cfg.prefix_len, "vla_checkpoint": vla_name_in_token,
                                        "demos": []})
    return root / "vla.pt", root / "token.pt"
