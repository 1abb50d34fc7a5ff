"""Serving the frozen VLA: `OnnxVla` runs any ONNX file that follows the contract; `FakeVla` stands in for tests.

This module owns the inference-side interface the VLA node and the simulator loop use:

    vla.spec                                   VlaSpec: cameras, image size, H, action names, Z, P, model id
    vla.infer(images, proprio) -> (ref_chunk float32[H, D] physical deltas, rl_token float32[Z])

`OnnxVla` loads with ONNX Runtime (CUDA when available and asked for, CPU otherwise; `provider` says which one
it got) and checks the graph against the contract (`rlt.models.contract`) before the first call. It imports
neither torch nor the training code, so a robot needs only numpy and onnxruntime.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlt.models.config import ACTION_NAMES, DEFAULT_INSTRUCTION
from rlt.models.contract import (
    IMAGE_INPUT_PREFIX,
    PROPRIO_INPUT,
    REF_CHUNK_OUTPUT,
    RL_TOKEN_OUTPUT,
    ContractError,
    VlaSpec,
    check_io,
    check_observation,
)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
_PROVIDER_ALIASES = {"cpu": [CPU], "cuda": [CUDA, CPU]}


def read_spec(path: str | Path) -> VlaSpec:
    """The `VlaSpec` of a contract-following ONNX file from its metadata alone (no inference session): what the
    nodes that only need the model's sizes (actor, learner) read."""
    import onnx  # deferred: the metadata reader only

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"VLA model {path} does not exist; export one with `rlt export`")
    model = onnx.load(str(path), load_external_data=False)
    return VlaSpec.from_metadata({p.key: p.value for p in model.metadata_props}, source=str(path))


def ort_session(path: Path, providers: str | Sequence[str] = "auto", threads: int = 0) -> Any:
    """An ONNX Runtime InferenceSession of `path` on `providers` (see `resolve_providers`), `threads` intra-op
    threads (0: ONNX Runtime's default)."""
    import onnxruntime as ort  # deferred: only the serving side needs it

    options = ort.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads = threads
    chosen = resolve_providers(providers, ort.get_available_providers())
    if CUDA in chosen and hasattr(ort, "preload_dlls"):
        ort.preload_dlls()  # CUDA + cuDNN from the nvidia wheels of onnxruntime-gpu[cuda,cudnn] (setup.sh --gpu)
    return ort.InferenceSession(str(path), options, providers=chosen)


def resolve_providers(providers: str | Sequence[str], available: Sequence[str]) -> list[str]:
    """ONNX Runtime providers for "auto" (CUDA if available, else CPU), "cpu", "cuda", or an explicit list."""
    if isinstance(providers, str):
        if providers == "auto":
            return [CUDA, CPU] if CUDA in available else [CPU]
        if providers not in _PROVIDER_ALIASES:
            raise ValueError(f"providers={providers!r}: expected auto, cpu, cuda or a list of provider names")
        if providers == "cuda" and CUDA not in available:
            raise ValueError(f"providers='cuda' but this onnxruntime offers only {', '.join(available)} "
                             "(install onnxruntime-gpu with a matching CUDA)")
        return list(_PROVIDER_ALIASES[providers])
    unknown = [p for p in providers if p not in available]
    if unknown:
        raise ValueError(f"providers {', '.join(unknown)} are not available; this onnxruntime offers "
                         f"{', '.join(available)}")
    return list(providers)


class _SpecView:
    """Read-only shortcuts to `self.spec`, shared by `OnnxVla` and `FakeVla`."""

    spec: VlaSpec

    @property
    def cameras(self) -> tuple[str, ...]:
        return self.spec.cameras

    @property
    def image_size(self) -> int:
        return self.spec.image_size

    @property
    def chunk_len(self) -> int:
        return self.spec.chunk_len

    @property
    def axis_names(self) -> tuple[str, ...]:
        return self.spec.action_names

    @property
    def token_dim(self) -> int:
        return self.spec.token_dim

    @property
    def proprio_dim(self) -> int:
        return self.spec.proprio_dim

    @property
    def instruction(self) -> str:
        return self.spec.instruction

    @property
    def model_id(self) -> str:
        return self.spec.model_id


class OnnxVla(_SpecView):
    """A contract-following VLA ONNX file, run with ONNX Runtime."""

    def __init__(self, path: str | Path, providers: str | Sequence[str] = "auto", threads: int = 0) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"VLA model {self.path} does not exist; export one with `rlt export vla`")
        self.session = ort_session(self.path, providers, threads)
        self.provider: str = self.session.get_providers()[0]  # the one that runs the graph
        meta = self.session.get_modelmeta().custom_metadata_map
        self.spec = VlaSpec.from_metadata(meta, source=str(self.path))
        check_io(self.spec, _signature(self.session.get_inputs()), _signature(self.session.get_outputs()),
                 source=str(self.path))
        self._image_inputs = [f"{IMAGE_INPUT_PREFIX}{c}" for c in self.spec.cameras]

    def infer(self, images: Mapping[str, np.ndarray], proprio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """images: camera -> uint8[S, S, 3] RGB; proprio float32[P], physical units.

        Returns (ref_chunk float32[H, D] physical deltas, rl_token float32[Z]).
        """
        ordered, state = check_observation(self.spec, images, proprio)
        feeds: dict[str, np.ndarray] = {name: image[None] for name, image in zip(self._image_inputs, ordered,
                                                                                 strict=True)}
        feeds[PROPRIO_INPUT] = state[None]
        ref_chunk, rl_token = self.session.run([REF_CHUNK_OUTPUT, RL_TOKEN_OUTPUT], feeds)
        return ref_chunk[0], rl_token[0]

    def __repr__(self) -> str:
        return f"OnnxVla({str(self.path)!r}, model_id={self.spec.model_id}, provider={self.provider})"


class FakeVla(_SpecView):
    """Deterministic stand-in with the `OnnxVla` interface, for tests of nodes and loops without a trained model.

    Not a policy: the reference chunk is a slow descent plus a small input-dependent wiggle, the token a fixed
    random projection of the image means and proprio. Equal inputs give equal outputs; different seeds give
    different (but fixed) projections. `FakeVla(cameras=("front",), image_size=64)` changes spec fields.
    """

    provider = "fake"

    def __init__(self, spec: VlaSpec | None = None, *, seed: int = 0, **spec_changes: Any) -> None:
        if spec is not None and spec_changes:
            raise ValueError("pass either a spec or spec field changes, not both")
        self.spec = spec or fake_spec(f"fake-{seed}", **spec_changes)
        features = 3 * len(self.spec.cameras) + self.spec.proprio_dim
        rng = np.random.default_rng(seed)
        self._token_proj = rng.normal(0.0, 1.0 / np.sqrt(features), (self.spec.token_dim, features))
        self._chunk_proj = rng.normal(0.0, 1.0 / np.sqrt(features), (self.spec.action_dim, features))
        self._base = np.zeros(self.spec.action_dim)
        if "dz" in self.spec.action_names:
            self._base[self.spec.action_names.index("dz")] = -0.0005  # m per step

    def infer(self, images: Mapping[str, np.ndarray], proprio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Same contract and errors as `OnnxVla.infer`."""
        ordered, state = check_observation(self.spec, images, proprio)
        features = np.concatenate([*(im.reshape(-1, 3).mean(0) / 255.0 for im in ordered), state])  # float64[F]
        rl_token = np.tanh(self._token_proj @ features).astype(np.float32)
        step = self._base + 1e-4 * np.tanh(self._chunk_proj @ features)  # float64[D]
        ref_chunk = np.repeat(step[None], self.spec.chunk_len, axis=0).astype(np.float32)
        return ref_chunk, rl_token

    def __repr__(self) -> str:
        return f"FakeVla(model_id={self.spec.model_id})"


def fake_spec(model_id: str = "fake", **changes: Any) -> VlaSpec:
    """The spec of the default VLA (two 96 px cameras, H = 20, Z = 64, P = 12), with `changes` applied."""
    values: dict[str, Any] = {"cameras": ("front", "wrist"), "image_size": 96, "chunk_len": 20,
                              "action_names": ACTION_NAMES, "token_dim": 64, "proprio_dim": 12,
                              "instruction": DEFAULT_INSTRUCTION, "model_id": model_id}
    unknown = sorted(set(changes) - set(values))
    if unknown:
        raise TypeError(f"unknown VlaSpec field(s) {', '.join(unknown)}; valid: {', '.join(values)}")
    values.update(changes)
    values["cameras"], values["action_names"] = tuple(values["cameras"]), tuple(values["action_names"])
    return VlaSpec(**values)


def _signature(args: Sequence[Any]) -> list[tuple[str, str, list[Any]]]:
    return [(a.name, a.type, list(a.shape)) for a in args]


__all__ = ["ContractError", "FakeVla", "OnnxVla", "VlaSpec", "fake_spec", "resolve_providers"]
