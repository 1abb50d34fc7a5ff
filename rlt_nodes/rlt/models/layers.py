"""Transformer building blocks shared by the VLA and the RL-token encoder–decoder.

This module owns the pre-norm transformer (`Transformer`, `Block`), its attention masks and the seeded-init and
learning-rate helpers every model here uses. The ops are plain matmuls, softmax and LayerNorm, so the models
export to ONNX with the TorchScript exporter and run in ONNX Runtime unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class Attention(nn.Module):
    """Multi-head self-attention with an optional boolean mask (True = may attend)."""

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"heads={heads} must divide d_model={d_model}")
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        b, n, d = x.shape  # x: float32[B, N, d]
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # [3, B, h, N, d/h]
        dropout = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=mask, dropout_p=dropout)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))  # float32[B, N, d]


class Block(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, d_model: int, heads: int, mlp_ratio: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = Attention(d_model, heads, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, mlp_ratio * d_model), nn.GELU(), nn.Linear(mlp_ratio * d_model, d_model)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        x = x + self.drop(self.attn(self.norm1(x), mask))
        return x + self.drop(self.mlp(self.norm2(x)))


class Transformer(nn.Module):
    """A stack of `Block`s followed by a final LayerNorm; float32[B, N, d] -> float32[B, N, d]."""

    def __init__(self, d_model: int, layers: int, heads: int, mlp_ratio: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(d_model, heads, mlp_ratio, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x)


def causal_mask(n: int) -> Tensor:
    """bool[n, n]: position i may attend to positions j <= i."""
    return torch.ones(n, n, dtype=torch.bool).tril()


def init_weights(module: nn.Module) -> None:
    """Truncated-normal(0.02) linear and embedding weights, zero biases (ViT-style); apply with `Module.apply`."""
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)


def cosine_lr(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Learning-rate multiplier at `step`: linear warmup over `warmup` steps, then cosine down to `min_ratio`."""
    warmup = min(warmup, total)
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
