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

Bring your own VLA (`rlt.models.embed`): `compose_onnx` builds the same served graph from another lab's policy on
the embeddings contract `rlt.embed/1` and an RL token trained on its embeddings. The token's encoder is exported
alone (prefix_embeddings float32[1, M, E] -> rl_token float32[1, Z]) at the policy's opset, its internal names
prefixed with `rlt_token/`, and joined to the policy graph at prefix_embeddings with `onnx.compose.merge_models`;
the result is checked against ONNX Runtime running the two graphs one after the other. `export_embed_onnx` writes
the project's own VLA on `rlt.embed/1` (a reference policy for that contract, and the like-for-like baseline when
measuring what composing costs at serving time).
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from rlt.models import image_features as _image_features
from rlt.models import rl_token as _rl_token
from rlt.models.checkpoint import checkpoint_kind, load_checkpoint
from rlt.models.contract import (
    CONTRACT,
    EMBED_CONTRACT,
    IMAGE_INPUT_PREFIX,
    PREFIX_OUTPUT,
    PROPRIO_INPUT,
    REF_CHUNK_OUTPUT,
    RL_TOKEN_OUTPUT,
    EmbedSpec,
    VlaSpec,
)
from rlt.models.image_features import ImageFeatures, load_image_features
from rlt.models.rl_token import RlToken, load_token
from rlt.models.vla import Vla, load_vla

T = TypeVar("T")
OPSET = 17
ENCODER_PREFIX = "rlt_token/"  # prefix of the token encoder's internal names inside a composed graph

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
    chunk_diff, token_diff = _verified(tmp, out_path, lambda path: _compare(model, path, check_samples, tolerance))
    return ExportReport(out_path, spec, chunk_diff, token_diff)


def _verified(tmp: Path, out_path: Path, verify: Callable[[Path], T]) -> T:
    """`verify(tmp)`, then `tmp` moved to `out_path`; a failed check removes `tmp` and leaves `out_path` as it was
    (the model being served is never replaced by one that failed its check)."""
    try:
        result = verify(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out_path)
    return result


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


class EmbeddingVla(nn.Module):
    """The project's VLA on the embeddings contract: (image per camera..., proprio) -> (ref_chunk, prefix)."""

    def __init__(self, vla: Vla) -> None:
        super().__init__()
        self.vla = vla

    def forward(self, *inputs: Tensor) -> tuple[Tensor, Tensor]:
        """inputs as `ExportedVla`'s; returns (ref_chunk float32[B, H, D] physical, prefix float32[B, M, d])."""
        chunk, prefix = self.vla(torch.stack(inputs[:-1], dim=1), inputs[-1])
        return self.vla.to_physical(chunk), prefix


@dataclasses.dataclass(frozen=True)
class EmbedExportReport:
    """What `export_embed_onnx` wrote and how closely ONNX Runtime matches PyTorch."""

    path: Path
    spec: EmbedSpec
    max_abs_diff_ref_chunk: float  # physical units (m, rad), over the check inputs
    max_abs_diff_prefix: float


def export_embed_onnx(vla_checkpoint: str | Path, out_path: str | Path, *, check_samples: int = 4,
                      tolerance: float = 1e-4) -> EmbedExportReport:
    """Write the VLA checkpoint alone as an `rlt.embed/1` graph at `out_path` and verify it against PyTorch."""
    import onnx

    from rlt.models.embed import OnnxEmbedder, stamp_embed_metadata

    vla = load_vla(vla_checkpoint)
    model = EmbeddingVla(vla).eval()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    cfg = vla.cfg
    names = [f"{IMAGE_INPUT_PREFIX}{c}" for c in cfg.cameras] + [PROPRIO_INPUT]
    sample = _sample_observation(vla, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, sample, str(tmp), input_names=names, output_names=[REF_CHUNK_OUTPUT, PREFIX_OUTPUT],
                          opset_version=OPSET, dynamo=False, do_constant_folding=True)
    proto = onnx.load(str(tmp))
    proto.doc_string = EMBED_CONTRACT
    proto.producer_name = "rlt.models.export"
    onnx.save(proto, str(tmp))
    spec = stamp_embed_metadata(tmp, action_names=cfg.action_names, instruction=cfg.instruction)

    def verify(path: Path) -> list[float]:
        runtime = OnnxEmbedder(path, providers="cpu")
        worst = [0.0, 0.0]
        for seed in range(check_samples):
            inputs = _sample_observation(vla, seed + 1)
            with torch.no_grad():
                expected = [t.numpy() for t in model(*inputs)]
            got = runtime.embed(torch.stack(inputs[:-1], dim=1).numpy(), inputs[-1].numpy())
            for k, (name, e, g) in enumerate(zip((REF_CHUNK_OUTPUT, PREFIX_OUTPUT), expected, got, strict=True)):
                worst[k] = max(worst[k], _check_close(e, g, tolerance, f"{out_path}: ONNX Runtime vs PyTorch, {name}"))
        return worst

    worst = _verified(tmp, out_path, verify)
    return EmbedExportReport(out_path, spec, worst[0], worst[1])


@dataclasses.dataclass(frozen=True)
class ComposeReport:
    """What `compose_onnx` wrote and how closely it matches its parts."""

    path: Path
    spec: VlaSpec
    policy: EmbedSpec  # the policy graph's spec
    max_abs_diff_ref_chunk: float  # composed graph vs the policy graph alone (physical units), over the checks
    max_abs_diff_rl_token: float  # composed graph vs the policy graph then the encoder graph, both in ONNX Runtime
    max_abs_diff_encoder: float  # the encoder graph in ONNX Runtime vs the token in PyTorch, same embeddings


class TokenEncoder(nn.Module):
    """The RL token's encoder as exported: prefix_embeddings float32[B, M, E] -> rl_token float32[B, state_dim]."""

    def __init__(self, token: RlToken) -> None:
        super().__init__()
        self.token = token

    def forward(self, prefix: Tensor) -> Tensor:
        return self.token.rl_state(prefix)


def compose_onnx(policy_path: str | Path, token_checkpoint: str | Path, out_path: str | Path, *,
                 check_samples: int = 4, tolerance: float = 1e-4, require_trained_on: bool = True) -> ComposeReport:
    """Compose the `rlt.embed/1` policy at `policy_path` and the RL token at `token_checkpoint` into one `rlt.vla/1`
    graph at `out_path` (written atomically), and verify it.

    The token must have been trained on this policy's embeddings (same graph id; `require_trained_on=False` skips
    that check, e.g. to compose `export_embed_onnx`'s graph with a token of the same VLA checkpoint). Raises
    AssertionError if the composed graph differs from the two graphs run separately (or the encoder graph from
    PyTorch) by more than `tolerance` times the output's largest magnitude on any of `check_samples` random
    observations.
    """
    import onnx
    from onnx import compose

    from rlt.models.embed import check_trained_on, graph_id, read_embed_spec

    policy_path, out_path = Path(policy_path), Path(out_path)
    policy_spec = read_embed_spec(policy_path)
    ckpt = load_checkpoint(token_checkpoint, _rl_token.CHECKPOINT_KIND)
    if require_trained_on:
        check_trained_on(ckpt, policy_path, str(token_checkpoint))
    token = load_token(token_checkpoint)
    if (token.prefix_len, token.d_model) != (policy_spec.prefix_len, policy_spec.embed_dim):
        raise ValueError(f"the RL token {token_checkpoint} reads {token.prefix_len} embeddings of width "
                         f"{token.d_model}; {policy_path} outputs {policy_spec.prefix_len} of width "
                         f"{policy_spec.embed_dim}: train the token on this policy")
    policy = onnx.load(str(policy_path))
    del policy.metadata_props[:]
    opset = next((o.version for o in policy.opset_import if o.domain in ("", "ai.onnx")), OPSET)
    encoder_model = TokenEncoder(token).eval()
    encoder = _encoder_graph(encoder_model, policy_spec, opset)
    encoder = compose.add_prefix(encoder, ENCODER_PREFIX, rename_inputs=False, rename_outputs=False)
    policy.ir_version = encoder.ir_version = max(policy.ir_version, encoder.ir_version)
    try:
        composed = compose.merge_models(policy, encoder, io_map=[(PREFIX_OUTPUT, PREFIX_OUTPUT)],
                                        outputs=[REF_CHUNK_OUTPUT, RL_TOKEN_OUTPUT], producer_name="rlt.models.export",
                                        producer_version="", name="rlt_composed_vla")
    except ValueError as exc:  # e.g. the policy already uses a name of ours (rl_token)
        raise ValueError(f"cannot compose {policy_path} with the token encoder: {exc}") from None
    model_id = hashlib.sha256(composed.SerializeToString()).hexdigest()[:16]
    spec = policy_spec.vla_spec(token.state_dim, model_id)
    for key, value in {**spec.to_metadata(), "rlt.policy_model_id": graph_id(policy_path)}.items():
        composed.metadata_props.add(key=key, value=value)
    composed.doc_string = CONTRACT
    onnx.checker.check_model(composed)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    onnx.save(composed, str(tmp))
    diffs = _verified(tmp, out_path, lambda path: _compare_composed(path, policy_path, encoder, encoder_model,
                                                                      check_samples, tolerance))
    return ComposeReport(out_path, spec, policy_spec, *diffs)


def _encoder_graph(encoder: TokenEncoder, spec: EmbedSpec, opset: int) -> Any:
    """The encoder as an onnx.ModelProto at `opset` (exported there, or at OPSET and converted when the exporter
    does not support it)."""
    import io

    import onnx
    from onnx import version_converter

    sample = torch.zeros(1, spec.prefix_len, spec.embed_dim)
    buffer = io.BytesIO()

    def export(version: int) -> Any:
        buffer.seek(0)
        buffer.truncate()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(encoder, (sample,), buffer, input_names=[PREFIX_OUTPUT], output_names=[RL_TOKEN_OUTPUT],
                              opset_version=version, dynamo=False, do_constant_folding=True)
        return onnx.load_from_string(buffer.getvalue())

    try:
        return export(opset)
    except Exception:  # the exporter fails with many exception types: fall back to converting
        try:
            return version_converter.convert_version(export(OPSET), opset)
        except Exception as exc:
            raise ValueError(f"the policy graph uses ONNX opset {opset}; the token encoder exports at {OPSET} and "
                             f"does not convert to {opset} ({exc}): convert the policy with "
                             f"onnx.version_converter.convert_version(model, {OPSET})") from None


def _compare_composed(path: Path, policy_path: Path, encoder: Any, encoder_model: TokenEncoder, samples: int,
                      tolerance: float) -> tuple[float, float, float]:
    """Max abs differences: composed vs policy then encoder (ONNX Runtime), and encoder graph vs PyTorch."""
    import onnxruntime as ort

    from rlt.models.embed import OnnxEmbedder
    from rlt.models.onnx_vla import OnnxVla

    composed = OnnxVla(path, providers="cpu")  # also checks the served contract
    policy = OnnxEmbedder(policy_path, providers="cpu")
    encoder_session = ort.InferenceSession(encoder.SerializeToString(), providers=["CPUExecutionProvider"])
    spec, rng = composed.spec, np.random.default_rng(0)
    worst = [0.0, 0.0, 0.0]
    for _ in range(samples):
        images = {c: rng.integers(0, 256, (spec.image_size, spec.image_size, 3), dtype=np.uint8) for c in spec.cameras}
        proprio = rng.normal(0.0, 1.0, spec.proprio_dim).astype(np.float32)
        chunk, z_rl = composed.infer(images, proprio)
        ref_chunk, prefix = policy.embed(np.stack([images[c] for c in spec.cameras])[None], proprio[None])
        (z_separate,) = encoder_session.run([RL_TOKEN_OUTPUT], {PREFIX_OUTPUT: prefix})
        with torch.no_grad():
            z_torch = encoder_model(torch.from_numpy(prefix)).numpy()
        where = f"{path}: composed graph vs"
        worst[0] = max(worst[0], _check_close(ref_chunk[0], chunk, tolerance, f"{where} the policy, ref_chunk"))
        worst[1] = max(worst[1], _check_close(z_separate[0], z_rl, tolerance, f"{where} the two graphs, rl_token"))
        worst[2] = max(worst[2], _check_close(z_torch, z_separate, tolerance, f"{path}: encoder graph vs PyTorch"))
    return worst[0], worst[1], worst[2]


def _check_close(expected: np.ndarray, got: np.ndarray, tolerance: float, what: str) -> float:
    """Max abs difference; AssertionError beyond `tolerance` times the expected output's largest magnitude."""
    diff = float(np.abs(expected - got).max())
    scale = float(np.abs(expected).max())
    if diff > tolerance * max(scale, 1e-12):
        raise AssertionError(f"{what} differ by {diff:.3g} (output scale {scale:.3g}); the export is wrong")
    return diff


def _sample_observation(vla: Vla, seed: int) -> tuple[Tensor, ...]:
    """Random images and a proprio around the training mean (batch 1), for a bare VLA."""
    cfg = vla.cfg
    g = torch.Generator().manual_seed(seed)
    images = [torch.randint(0, 256, (1, cfg.image_size, cfg.image_size, 3), dtype=torch.uint8, generator=g)
              for _ in cfg.cameras]
    return (*images, vla.proprio_mean + vla.proprio_std * torch.randn(1, cfg.proprio_dim, generator=g))
