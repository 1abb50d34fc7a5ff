"""VLA serving core: load a VLA behind the ONNX contract, check it against the deployment, answer requests.

`VlaServer` is what the VLA node wraps: it loads `rlt.models.onnx_vla.OnnxVla` (or the clearly named
`FakeVla` for tests without a trained model), refuses a model whose cameras, image size or action axes do not
match the deployment (at startup, not in a callback) and turns one synchronized observation into a `VlaOutput`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from rlt.config import Config
from rlt.sync import SyncedObservation
from rlt.types import ActionChunk, Source, VlaOutput


@dataclasses.dataclass(frozen=True)
class VlaServerConfig(Config):
    """What the VLA node serves and what the deployment feeds it."""

    model_path: str = "artifacts/vla.onnx"  # ONNX file exported by `rlt export` (or any model on the same contract)
    fake: bool = False  # serve rlt.models.onnx_vla.FakeVla instead (tests and smoke runs without a trained model)
    providers: str = "auto"  # ONNX Runtime execution providers: auto (CUDA when available), cpu, cuda
    cameras: tuple[str, ...] = ("front", "wrist")  # image topics camera/<name>/image_raw, in the model's order
    image_size: int = 96  # px, square images the deployment publishes
    threads: int = 0  # ONNX Runtime intra-op threads; 0 = its default (all cores), 1 per process in parallel sweeps

    def validate(self) -> None:
        self.require_choice("providers", ("auto", "cpu", "cuda"))
        self.require_positive("image_size")
        self.require_range("threads", 0, 1024)
        if not self.cameras:
            self.fail("cameras", "needs at least one camera")


class VlaServer:
    """One forward pass per synchronized observation."""

    def __init__(self, cfg: VlaServerConfig) -> None:
        from rlt.models.onnx_vla import FakeVla, OnnxVla

        self.cfg = cfg
        if cfg.fake:
            self.model = FakeVla(cameras=cfg.cameras, image_size=cfg.image_size)
        else:
            path = Path(cfg.model_path)
            if not path.is_file():
                raise FileNotFoundError(
                    f"VlaServerConfig.model_path: {path.resolve()} does not exist; train and export one "
                    "(rlt train vla, rlt train token, rlt export) or set fake:=true for a smoke run"
                )
            self.model = OnnxVla(path, providers=cfg.providers, threads=cfg.threads)
        if tuple(self.model.cameras) != cfg.cameras:
            raise ValueError(f"VlaServerConfig.cameras={cfg.cameras} but the model expects {tuple(self.model.cameras)}")
        if self.model.image_size != cfg.image_size:
            raise ValueError(
                f"VlaServerConfig.image_size={cfg.image_size} but the model expects {self.model.image_size} px"
            )

    @property
    def provider(self) -> str:
        return self.model.provider

    def answer(self, obs: SyncedObservation) -> VlaOutput:
        """Run the VLA on `obs`; the reference chunk's columns are the request's action axes."""
        if tuple(self.model.axis_names) != obs.request.axis_names:
            raise ValueError(
                f"ChunkRequest.axis_names={obs.request.axis_names} but the model acts on {tuple(self.model.axis_names)}"
            )
        ref_chunk, rl_token = self.model.infer(obs.images, obs.proprio)  # float32[H, D], float32[Z]
        reference = ActionChunk(
            np.asarray(ref_chunk, np.float32), obs.request.axis_names, Source.VLA, stamp_ns=obs.request.stamp_ns
        )
        return VlaOutput(obs.request, reference, rl_token, obs.proprio, self.model.model_id, obs.request.stamp_ns)
