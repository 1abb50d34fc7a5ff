"""Checkpoint files of the models: atomic writes and kind-checked loads (`torch.load(weights_only=True)`).

A checkpoint is a dict with a "kind" string (e.g. "rlt.vla", "rlt.token", "rlt.image_features"), the model's
config as a plain dict and its state dict, plus whatever the trainer needs to resume (optimizer state, step,
generator state): tensors and plain Python values only, so loading never unpickles code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """torch.save `payload` to `path` atomically (write a sibling temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def checkpoint_kind(path: str | Path) -> str:
    """The "kind" string of the checkpoint at `path` ("" if it has none); raises if the file is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    return str(ckpt.get("kind", "")) if isinstance(ckpt, dict) else ""


def load_checkpoint(path: str | Path, kind: str) -> dict[str, Any]:
    """The checkpoint dict at `path`; raises if it is missing or not of `kind`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("kind") != kind:
        found = ckpt.get("kind") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{path} is not a {kind} checkpoint (kind: {found!r})")
    return ckpt
