"""Actor weight snapshots on disk: the `PolicyWeights` payload as one .npz (no pickle), written atomically.

The learner writes one next to its checkpoints; the actor loads one at startup for evaluation runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from rlt.types import PolicyWeights

_META = ("__version", "__learner_step", "__architecture")


def save_weights(path: str | os.PathLike[str], weights: PolicyWeights) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.savez(
            f,
            __version=np.int64(weights.version),
            __learner_step=np.int64(weights.learner_step),
            __architecture=np.str_(weights.architecture),
            **weights.tensors,
        )
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_weights(path: str | os.PathLike[str]) -> PolicyWeights:
    """Read a snapshot written by `save_weights`; a missing or foreign file raises naming the path."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"actor weights file {path} does not exist")
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in _META if k not in data.files]
        if missing:
            raise ValueError(f"{path}: not an actor weights file (missing {missing})")
        tensors = {k: data[k] for k in data.files if k not in _META}
        return PolicyWeights(int(data["__version"]), tensors, int(data["__learner_step"]), str(data["__architecture"]))
