"""The frozen base policy: a small vision-language-action transformer, trained by behaviour cloning on demos.

This module owns the VLA architecture (`Vla`), its instruction tokenizer, its checkpoint format (`save_vla` /
`load_vla`) and its physical-unit interface. Training lives in `rlt.models.bc`, closed-loop evaluation in
`rlt.app.evaluate`.

Architecture (one forward pass per chunk boundary):

    images uint8[B, K, S, S, 3] --conv patchify stem (shared across cameras)--> K * (S/p)^2 patch tokens
                                  + learned position embedding + camera embedding
    proprio float32[B, P] --normalize (dataset mean/std stored in the model)--> linear --> 1 proprio token
    instruction (fixed string) --word-hash tokenizer--> embedding + position --> L language tokens
    [patches, proprio, language, <act>] --pre-norm transformer, L blocks-->
        prefix = the M patch + proprio embeddings the last block reads (its LayerNorm'd input; language dropped,
                 as in the paper)
        <act> output --MLP--> normalized chunk float32[B, H, D] (times `action_scale` = physical deltas)

Why this prefix, chunk regression and this loss, with the measurements: docs/models.md, section `rlt.models.vla`.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rlt.models.checkpoint import load_checkpoint, save_checkpoint
from rlt.models.config import VlaConfig
from rlt.models.layers import Transformer, init_weights

CHECKPOINT_KIND = "rlt.vla"
_PROPRIO_STD_FLOOR = 1e-4  # keeps near-constant proprio entries (pitch, roll) from blowing up after normalization


def tokenize_instruction(text: str, vocab_size: int, max_tokens: int) -> list[int]:
    """Word ids in [1, vocab_size) of `text` (lower-cased alphanumeric words, CRC32-hashed), at most `max_tokens`.

    Deterministic across processes and platforms (no salted `hash`); id 0 is reserved for padding.
    """
    words = re.findall(r"[a-z0-9]+", text.lower())
    if not words:
        raise ValueError(f"instruction {text!r} has no words")
    return [1 + zlib.crc32(w.encode()) % (vocab_size - 1) for w in words[:max_tokens]]


class PatchStem(nn.Module):
    """Convolutional patchify: uint8-derived float32[B, 3, S, S] -> float32[B, (S/p)^2, d].

    Two strided convolutions (stride `stem_stride`, then p / stem_stride) instead of one p x p projection: the
    early non-linearity lets a patch token encode where an edge lies inside its patch, i.e. sub-patch precision.
    """

    def __init__(self, cfg: VlaConfig) -> None:
        super().__init__()
        s, c = cfg.stem_stride, cfg.stem_channels
        self.net = nn.Sequential(
            nn.Conv2d(3, c, kernel_size=s, stride=s),
            nn.GELU(),
            nn.Conv2d(c, cfg.d_model, kernel_size=cfg.patch_size // s, stride=cfg.patch_size // s),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).flatten(2).transpose(1, 2)  # float32[B, (S/p)^2, d]


class Vla(nn.Module):
    """Vision-language-action transformer; `forward` returns (normalized chunk, prefix embeddings)."""

    def __init__(self, cfg: VlaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, k = cfg.d_model, len(cfg.cameras)
        ids = tokenize_instruction(cfg.instruction, cfg.vocab_size, cfg.max_instruction_tokens)
        self.stem = PatchStem(cfg)
        self.patch_pos = nn.Parameter(torch.zeros(cfg.patches_per_camera, d))
        self.camera_emb = nn.Parameter(torch.zeros(k, d))
        self.proprio_in = nn.Linear(cfg.proprio_dim, d)
        self.word_emb = nn.Embedding(cfg.vocab_size, d)
        self.word_pos = nn.Parameter(torch.zeros(len(ids), d))
        self.act_query = nn.Parameter(torch.zeros(d))
        self.backbone = Transformer(d, cfg.layers, cfg.heads, cfg.mlp_ratio, cfg.dropout)
        self.head = nn.Sequential(nn.Linear(d, cfg.mlp_ratio * d), nn.GELU(),
                                  nn.Linear(cfg.mlp_ratio * d, cfg.chunk_len * cfg.action_dim))
        self.apply(init_weights)
        for p in (self.patch_pos, self.camera_emb, self.word_pos, self.act_query):
            nn.init.trunc_normal_(p, std=0.02)
        n = cfg.prefix_len + len(ids) + 1
        mask = torch.ones(n, n, dtype=torch.bool)
        mask[:-1, -1] = False  # nothing but the readout token itself attends to the readout token
        self.register_buffer("attn_mask", mask)  # bool[N, N]
        self.register_buffer("instruction_ids", torch.tensor(ids, dtype=torch.long))  # int64[L]
        self.register_buffer("proprio_mean", torch.zeros(cfg.proprio_dim))  # float32[P], physical units
        self.register_buffer("proprio_std", torch.ones(cfg.proprio_dim))  # float32[P]
        self.register_buffer("action_scale", torch.tensor(cfg.action_scale, dtype=torch.float32))  # float32[D]

    def set_proprio_stats(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Store the dataset statistics used to normalize proprio inside the model (and the ONNX graph)."""
        self.proprio_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.proprio_std.copy_(torch.as_tensor(np.maximum(std, _PROPRIO_STD_FLOOR), dtype=torch.float32))

    def forward(self, images: Tensor, proprio: Tensor) -> tuple[Tensor, Tensor]:
        """images uint8[B, K, S, S, 3] (RGB, cameras in cfg order), proprio float32[B, P] in physical units.

        Returns (chunk float32[B, H, D] normalized by action_scale, prefix float32[B, M, d]).
        """
        cfg = self.cfg
        b, k, s = images.shape[0], images.shape[1], images.shape[2]
        pixels = images.reshape(b * k, s, s, 3).permute(0, 3, 1, 2).float() / 255.0 - 0.5  # float32[B*K, 3, S, S]
        patches = self.stem(pixels).reshape(b, k, cfg.patches_per_camera, cfg.d_model)  # float32[B, K, p, d]
        patches = (patches + self.patch_pos + self.camera_emb[:, None]).reshape(b, -1, cfg.d_model)
        state = self.proprio_in((proprio - self.proprio_mean) / self.proprio_std)[:, None]  # float32[B, 1, d]
        words = (self.word_emb(self.instruction_ids) + self.word_pos).expand(b, -1, -1)  # float32[B, L, d]
        query = self.act_query.expand(b, 1, -1)  # float32[B, 1, d]
        x = torch.cat([patches, state, words, query], dim=1)  # float32[B, N, d]
        *blocks, last = self.backbone.blocks
        for block in blocks:
            x = block(x, self.attn_mask)
        prefix = last.norm1(x[:, : cfg.prefix_len])  # float32[B, M, d]: what the last block's attention reads
        act = self.backbone.norm(last(x, self.attn_mask)[:, -1])  # float32[B, d]
        chunk = self.head(act).reshape(b, cfg.chunk_len, cfg.action_dim)  # float32[B, H, D]
        return chunk, prefix

    def to_physical(self, chunk: Tensor) -> Tensor:
        """float32[..., H, D] normalized chunk -> physical deltas (m, rad per control step)."""
        return chunk * self.action_scale

    def to_normalized(self, chunk: Tensor) -> Tensor:
        """float32[..., H, D] physical chunk -> normalized (bound = 1)."""
        return chunk / self.action_scale


def save_vla(path: str | Path, model: Vla, extra: dict[str, Any] | None = None) -> None:
    """Atomically write a checkpoint of `model` (config, weights, normalization) plus `extra` entries."""
    save_checkpoint(path, {"kind": CHECKPOINT_KIND, "config": model.cfg.to_dict(),
                           "model": model.state_dict(), **(extra or {})})


def load_vla(path: str | Path, *, frozen: bool = True) -> Vla:
    """The VLA stored at `path`, in eval mode; `frozen` also turns off its gradients."""
    ckpt = load_checkpoint(path, CHECKPOINT_KIND)
    model = Vla(VlaConfig.from_dict(ckpt["config"], source=str(path)))
    model.load_state_dict(ckpt["model"])
    model.eval()
    if frozen:
        model.requires_grad_(False)
    return model
