"""Export of the trained VLA and RL-token encoder as ONE ONNX graph that follows `rlt.models.contract`.

This module owns `export_onnx`: it wraps the two checkpoints in `ExportedVla` (uint8 HWC images and physical
proprio in; physical reference chunk and z_rl out, all normalization inside the graph), exports it with the
TorchScript-based exporter (no onnxscript needed), writes the contract's metadata (the model id is the sha256 of
the graph before the metadata is added), and checks the file: the contract via `OnnxVla`, and ONNX Runtime
against PyTorch on random inputs.

The encoder checkpoint is either the RL token (z_rl from the VLA's prefix embeddings) or, for the "no RL token"
ablation, the image-feature CNN (`rlt.models.image_features`: features of the raw images); `load_encoder` tells
them apart by the checkpoint's kind. Either way the graph has the same contract, and its rl_token output is what
the actor and learner read as z_rl.

I/O (the full text is `rlt.models.contract.CONTRACT`, also stored as the ONNX file's doc string):

    inputs   image_<camera> uint8[1, S, S, 3] RGB per camera; proprio float32[1, P] physical units
    outputs  ref_chunk float32[1, H, D] physical per-step deltas; rl_token float32[1, Z]
    metadata rlt.contract, rlt.model_id (content hash), rlt.cameras, rlt.image_size, rlt.chunk_len,
             rlt.action_names, rlt.token_dim, rlt.proprio_dim, rlt.instruction
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from rlt.models import image_features as _image_features
from rlt.models import rl_token as _rl_token
from rlt.models.checkpoint import checkpoint_kind
from rlt.models.contract import CONTRACT, IMAGE_INPUT_PREFIX, PROPRIO_INPUT, REF_CHUNK_OUTPUT, RL_TOKEN_OUTPUT, VlaSpec
from rlt.models.image_features import ImageFeatures, load_image_features
from rlt.models.rl_token import RlToken, load_token
from rlt.models.vla import Vla, load_vla

OPSET = 17

Encoder = RlToken | ImageFeatures  # what fills the contract's rl_token output


def load_encoder(path: str | Path) -> Encoder:
    """The RL token or the image-feature encoder stored at `path`, by the checkpoint's kind."""
    kind = checkpoint_kind(path)
    if kind == _image_features.CHECKPOINT_KIND:
        return load_image_features(path)
    if kind == _rl_token.CHECKPOINT_KIND:
        return load_token(path)
    raise ValueError(f"{path} is neither an RL-token ({_rl_token.CHECKPOINT_KIND}) nor an image-feature "
                     f"({_image_features.CHECKPOINT_KIND}) checkpoint (kind: {kind!r})")


class ExportedVla(nn.Module):
    """VLA + z_rl encoder with the contract's signature: (image per camera..., proprio) -> (ref_chunk, z_rl).

    `encoder` is the RL token (reads the VLA's prefix embeddings) or the image-feature CNN (reads the raw
    images; the "no RL token" ablation).
    """

    def __init__(self, vla: Vla, encoder: Encoder) -> None:
        super().__init__()
        if isinstance(encoder, RlToken):
            _rl_token.check_compatible(vla, encoder)
        else:
            _image_features.check_compatible(vla.cfg, encoder)
        self.vla, self.encoder = vla, encoder

    @property
    def token_dim(self) -> int:
        """Z, the size of the rl_token output."""
        if isinstance(self.encoder, RlToken):
            return self.encoder.state_dim
        return self.encoder.cfg.feature_dim

    def forward(self, *inputs: Tensor) -> tuple[Tensor, Tensor]:
        """inputs: uint8[B, S, S, 3] per camera (in cfg order), then proprio float32[B, P] physical.

        Returns (ref_chunk float32[B, H, D] physical, rl_token float32[B, Z]).
        """
        images = torch.stack(inputs[:-1], dim=1)  # uint8[B, K, S, S, 3]
        chunk, prefix = self.vla(images, inputs[-1])  # prefix float32[B, M, d]
        # z_rl float32[B, Z]: the RL token of the prefix, or (ablation) the image features in its place
        z_rl = self.encoder.rl_state(prefix) if isinstance(self.encoder, RlToken) else self.encoder.encode(images)
        return self.vla.to_physical(chunk), z_rl

    def spec(self, model_id: str) -> VlaSpec:
        cfg = self.vla.cfg
        return VlaSpec(cameras=cfg.cameras, image_size=cfg.image_size, chunk_len=cfg.chunk_len,
                       action_names=cfg.action_names, token_dim=self.token_dim,
                       proprio_dim=cfg.proprio_dim, instruction=cfg.instruction, model_id=model_id)


@dataclasses.dataclass(frozen=True)
class ExportReport:
    """What `export_onnx` wrote and how closely ONNX Runtime matches PyTorch."""

    path: Path
    spec: VlaSpec
    max_abs_diff_ref_chunk: float  # physical units (m, rad), over the check inputs
    max_abs_diff_rl_token: float


def export_onnx(vla_checkpoint: str | Path, encoder_checkpoint: str | Path, out_path: str | Path, *,
                check_samples: int = 4, tolerance: float = 1e-4) -> ExportReport:
    """Write the contract ONNX graph of the two checkpoints to `out_path` (atomically) and verify it.

    `encoder_checkpoint` is the RL token's or the image-feature encoder's (see `load_encoder`). Raises
    AssertionError if ONNX Runtime differs from PyTorch by more than `tolerance` times the output's largest
    magnitude on any of `check_samples` random observations.
    """
    import onnx

    model = ExportedVla(load_vla(vla_checkpoint), load_encoder(encoder_checkpoint)).eval()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    names = [f"{IMAGE_INPUT_PREFIX}{c}" for c in model.vla.cfg.cameras] + [PROPRIO_INPUT]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, _sample_inputs(model, 0), str(tmp), input_names=names,
                          output_names=[REF_CHUNK_OUTPUT, RL_TOKEN_OUTPUT], opset_version=OPSET, dynamo=False,
                          do_constant_folding=True)
    proto = onnx.load(str(tmp))
    model_id = hashlib.sha256(proto.SerializeToString()).hexdigest()[:16]
    spec = model.spec(model_id)
    for key, value in spec.to_metadata().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = CONTRACT
    proto.producer_name = "rlt.models.export"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))
    tmp.replace(out_path)
    chunk_diff, token_diff = _compare(model, out_path, check_samples, tolerance)
    return ExportReport(out_path, spec, chunk_diff, token_diff)


def _sample_inputs(model: ExportedVla, seed: int) -> tuple[Tensor, ...]:
    """Random images and a proprio around the training mean (batch 1)."""
    cfg = model.vla.cfg
    g = torch.Generator().manual_seed(seed)
    images = [torch.randint(0, 256, (1, cfg.image_size, cfg.image_size, 3), dtype=torch.uint8, generator=g)
              for _ in cfg.cameras]
    proprio = model.vla.proprio_mean + model.vla.proprio_std * torch.randn(1, cfg.proprio_dim, generator=g)
    return (*images, proprio)


def _compare(model: ExportedVla, path: Path, samples: int, tolerance: float) -> tuple[float, float]:
    """Max abs difference ONNX Runtime vs PyTorch per output; AssertionError beyond `tolerance` x output scale."""
    from rlt.models.onnx_vla import OnnxVla

    runtime = OnnxVla(path, providers="cpu")  # also checks the contract
    cameras = model.vla.cfg.cameras
    worst = {REF_CHUNK_OUTPUT: 0.0, RL_TOKEN_OUTPUT: 0.0}
    for seed in range(samples):
        inputs = _sample_inputs(model, seed + 1)
        with torch.no_grad():
            expected = [t[0].numpy() for t in model(*inputs)]
        got = runtime.infer({c: x[0].numpy() for c, x in zip(cameras, inputs[:-1], strict=True)},
                            inputs[-1][0].numpy())
        for name, e, g in zip(worst, expected, got, strict=True):
            diff = float(np.abs(e - g).max())
            worst[name] = max(worst[name], diff)
            scale = float(np.abs(e).max())
            if diff > tolerance * scale:
                raise AssertionError(f"{path}: ONNX Runtime and PyTorch differ by {diff:.3g} on {name} "
                                     f"(output scale {scale:.3g}); the export is wrong")
    return worst[REF_CHUNK_OUTPUT], worst[RL_TOKEN_OUTPUT]
