"""The I/O contracts of the VLA's ONNX files: what a file served as "the VLA" must look like, and what another
lab's policy must look like to have an RL token trained on it.

This module owns both contracts and their checks:

* `rlt.vla/1` (`CONTRACT`, `VlaSpec`): the served graph, policy and RL token in one; what every node reads.
* `rlt.embed/1` (`EMBED_CONTRACT`, `EmbedSpec`): a policy alone, exposing the final-layer embeddings the RL token
  compresses ("bring your own VLA"); `rlt train token` trains a token on them and `rlt export` composes the two
  into one `rlt.vla/1` graph.

Shared checks: `check_io` (a graph's inputs and outputs against either spec, used when a model is loaded) and
`check_observation` (one observation against a spec, used on every `infer`). It imports neither torch nor
onnxruntime, so the serving side stays light.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

CONTRACT_VERSION = "rlt.vla/1"
EMBED_CONTRACT_VERSION = "rlt.embed/1"
IMAGE_INPUT_PREFIX = "image_"
PROPRIO_INPUT = "proprio"
REF_CHUNK_OUTPUT = "ref_chunk"
RL_TOKEN_OUTPUT = "rl_token"
PREFIX_OUTPUT = "prefix_embeddings"

CONTRACT = f"""\
RLT frozen-VLA ONNX contract {CONTRACT_VERSION}: one graph, one forward pass per chunk boundary.

Inputs (batch dimension 1, or symbolic):
  {IMAGE_INPUT_PREFIX}<camera>  uint8[1, S, S, 3]  RGB, row-major HWC, one input per camera in rlt.cameras
  {PROPRIO_INPUT}         float32[1, P]   hand pose x, y, z [m], yaw, pitch, roll [rad], then their rates
                                  [m/s, rad/s], physical units; normalization happens inside the graph
Outputs:
  {REF_CHUNK_OUTPUT}       float32[1, H, D]  reference action chunk, physical per-step deltas (axes and units in
                                     rlt.action_names: dx, dy, dz [m], dyaw [rad]); denormalized in the graph
  {RL_TOKEN_OUTPUT}        float32[1, Z]     RL token z_rl
Metadata (ONNX metadata_props, all strings):
  rlt.contract      {CONTRACT_VERSION}
  rlt.model_id      content hash of the graph (sha256 of the model without metadata, 16 hex digits)
  rlt.cameras       comma-separated camera names, in input order
  rlt.image_size    S
  rlt.chunk_len     H
  rlt.action_names  comma-separated D axis names
  rlt.token_dim     Z
  rlt.proprio_dim   P
  rlt.instruction   the task instruction the model is conditioned on
"""

EMBED_CONTRACT = f"""\
RLT policy-embeddings ONNX contract {EMBED_CONTRACT_VERSION}: a policy that exposes the embeddings an RL token is
trained on ("bring your own VLA"). Same inputs as {CONTRACT_VERSION}; `rlt export --vla MODEL.onnx --token TOKEN.pt`
composes it with a token trained on its embeddings into one {CONTRACT_VERSION} graph.

Inputs (batch dimension 1, or symbolic; symbolic lets `rlt train token` run frames in batches):
  {IMAGE_INPUT_PREFIX}<camera>  uint8[1, S, S, 3]  RGB, row-major HWC, one input per camera in rlt.cameras
  {PROPRIO_INPUT}         float32[1, P]   hand pose x, y, z [m], yaw, pitch, roll [rad], then their rates
                                  [m/s, rad/s], physical units; normalization happens inside the graph
Outputs (further outputs are allowed and ignored):
  {REF_CHUNK_OUTPUT}          float32[1, H, D]  reference action chunk, physical per-step deltas (axes and
                                        units in rlt.action_names: dx, dy, dz [m], dyaw [rad])
  {PREFIX_OUTPUT}  float32[1, M, E]  the policy's final-layer embeddings of its observation tokens (M tokens
                                        of width E), what the RL token compresses; a deterministic function
                                        of the inputs (no dropout, no sampling)
Metadata (ONNX metadata_props, all strings):
  rlt.contract      {EMBED_CONTRACT_VERSION}
  rlt.model_id      content hash of the graph (sha256 of the model without metadata_props, 16 hex digits)
  rlt.cameras       comma-separated camera names, in input order
  rlt.image_size    S
  rlt.chunk_len     H
  rlt.action_names  comma-separated D axis names
  rlt.proprio_dim   P
  rlt.prefix_len    M
  rlt.embed_dim     E
  rlt.instruction   the task instruction the model is conditioned on
`rlt.models.embed.stamp_embed_metadata` writes all of them from the graph's own shapes.
"""

_KEYS: dict[str, str] = {  # VlaSpec field -> metadata key
    "cameras": "rlt.cameras",
    "image_size": "rlt.image_size",
    "chunk_len": "rlt.chunk_len",
    "action_names": "rlt.action_names",
    "token_dim": "rlt.token_dim",
    "proprio_dim": "rlt.proprio_dim",
    "instruction": "rlt.instruction",
    "model_id": "rlt.model_id",
}
_EMBED_KEYS: dict[str, str] = {  # EmbedSpec field -> metadata key
    "cameras": "rlt.cameras",
    "image_size": "rlt.image_size",
    "chunk_len": "rlt.chunk_len",
    "action_names": "rlt.action_names",
    "proprio_dim": "rlt.proprio_dim",
    "prefix_len": "rlt.prefix_len",
    "embed_dim": "rlt.embed_dim",
    "instruction": "rlt.instruction",
    "model_id": "rlt.model_id",
}
_LIST_FIELDS = frozenset({"cameras", "action_names"})  # comma-separated in the metadata
_INT_FIELDS = frozenset({"image_size", "chunk_len", "token_dim", "proprio_dim", "prefix_len", "embed_dim"})
CONTRACT_KEY = "rlt.contract"
METADATA_KEYS: tuple[str, ...] = (CONTRACT_KEY, *_KEYS.values())
EMBED_METADATA_KEYS: tuple[str, ...] = (CONTRACT_KEY, *_EMBED_KEYS.values())
_WRONG_CONTRACT_HINT = {  # (expected, found) -> what to do instead
    (CONTRACT_VERSION, EMBED_CONTRACT_VERSION): "it is a policy without an RL token; compose it with a token trained "
                                                "on its embeddings: rlt export --vla MODEL.onnx --token TOKEN.pt",
    (EMBED_CONTRACT_VERSION, CONTRACT_VERSION): "it is an exported VLA with its RL token already composed in; "
                                                "give the policy alone, exported with the prefix_embeddings output",
}


class ContractError(ValueError):
    """A model or an observation does not follow a VLA contract; the message names what is wrong."""


class _Spec:
    """What both contracts' specs share: the inputs and the metadata round trip (`keys`: field -> metadata key)."""

    contract: ClassVar[str]
    title: ClassVar[str]
    keys: ClassVar[dict[str, str]]
    cameras: tuple[str, ...]
    image_size: int
    action_names: tuple[str, ...]
    proprio_dim: int

    @property
    def action_dim(self) -> int:
        return len(self.action_names)

    def to_metadata(self) -> dict[str, str]:
        """The ONNX metadata_props of this spec."""
        return _to_metadata(self, self.contract, self.keys)

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str], source: str = "model") -> Any:
        """Parse ONNX metadata; ContractError names missing or malformed keys."""
        return cls(**_parse_metadata(meta, cls.contract, cls.keys, source))

    def expected_inputs(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        """Input name -> (element type, shape) as ONNX Runtime reports them (the same for both contracts)."""
        return _expected_inputs(self.cameras, self.image_size, self.proprio_dim)


@dataclasses.dataclass(frozen=True)
class VlaSpec(_Spec):
    """What a contract-following VLA consumes and produces."""

    contract: ClassVar[str] = CONTRACT_VERSION
    title: ClassVar[str] = "VLA contract"
    keys: ClassVar[dict[str, str]] = _KEYS

    cameras: tuple[str, ...]
    image_size: int  # S, px
    chunk_len: int  # H
    action_names: tuple[str, ...]  # D names
    token_dim: int  # Z
    proprio_dim: int  # P
    instruction: str
    model_id: str

    def expected_outputs(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        return {REF_CHUNK_OUTPUT: ("tensor(float)", (1, self.chunk_len, self.action_dim)),
                RL_TOKEN_OUTPUT: ("tensor(float)", (1, self.token_dim))}


@dataclasses.dataclass(frozen=True)
class EmbedSpec(_Spec):
    """What a policy on the embeddings contract (`EMBED_CONTRACT`) consumes and produces."""

    contract: ClassVar[str] = EMBED_CONTRACT_VERSION
    title: ClassVar[str] = "policy-embeddings contract"
    keys: ClassVar[dict[str, str]] = _EMBED_KEYS

    cameras: tuple[str, ...]
    image_size: int  # S, px
    chunk_len: int  # H
    action_names: tuple[str, ...]  # D names
    proprio_dim: int  # P
    prefix_len: int  # M, embedding tokens
    embed_dim: int  # E, width of one embedding token
    instruction: str
    model_id: str

    def expected_outputs(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        return {REF_CHUNK_OUTPUT: ("tensor(float)", (1, self.chunk_len, self.action_dim)),
                PREFIX_OUTPUT: ("tensor(float)", (1, self.prefix_len, self.embed_dim))}

    def vla_spec(self, token_dim: int, model_id: str) -> VlaSpec:
        """The `rlt.vla/1` spec of this policy composed with an RL token of `token_dim` outputs."""
        return VlaSpec(cameras=self.cameras, image_size=self.image_size, chunk_len=self.chunk_len,
                       action_names=self.action_names, token_dim=token_dim, proprio_dim=self.proprio_dim,
                       instruction=self.instruction, model_id=model_id)


def _expected_inputs(cameras: Sequence[str], image_size: int,
                     proprio_dim: int) -> dict[str, tuple[str, tuple[int, ...]]]:
    io = {f"{IMAGE_INPUT_PREFIX}{c}": ("tensor(uint8)", (1, image_size, image_size, 3)) for c in cameras}
    io[PROPRIO_INPUT] = ("tensor(float)", (1, proprio_dim))
    return io


def _to_metadata(spec: Any, version: str, keys: Mapping[str, str]) -> dict[str, str]:
    meta = {CONTRACT_KEY: version}
    for field, key in keys.items():
        value = getattr(spec, field)
        meta[key] = ",".join(value) if field in _LIST_FIELDS else str(value)
    return meta


def _parse_metadata(meta: Mapping[str, str], version: str, keys: Mapping[str, str], source: str) -> dict[str, Any]:
    """Spec field values from ONNX metadata `meta` of contract `version`; ContractError names what is wrong."""
    found = meta.get(CONTRACT_KEY)
    if found is not None and found != version:
        hint = _WRONG_CONTRACT_HINT.get((version, found))
        raise ContractError(f"{source}: metadata {CONTRACT_KEY}={found!r}, expected {version!r}"
                            + (f": {hint}" if hint else ""))
    missing = [k for k in (CONTRACT_KEY, *keys.values()) if k not in meta]
    if missing:
        raise ContractError(f"{source}: metadata lacks {', '.join(missing)} (contract {version})")
    values: dict[str, Any] = {}
    for field, key in keys.items():
        text = meta[key]
        if field in _LIST_FIELDS:
            values[field] = tuple(t.strip() for t in text.split(",") if t.strip())
            if not values[field]:
                raise ContractError(f"{source}: metadata {key} is empty")
        elif field in _INT_FIELDS:
            try:
                values[field] = int(text)
            except ValueError:
                raise ContractError(f"{source}: metadata {key}={text!r} is not an integer") from None
            if values[field] <= 0:
                raise ContractError(f"{source}: metadata {key}={text!r} must be > 0")
        else:
            values[field] = text
    return values


def check_io(spec: VlaSpec | EmbedSpec, inputs: Sequence[tuple[str, str, Sequence[Any]]],
             outputs: Sequence[tuple[str, str, Sequence[Any]]], source: str = "model") -> None:
    """Check a graph's (name, type, shape) inputs and outputs against `spec`; ContractError lists every problem.

    A dimension may be symbolic (a string or None) only in the batch position.
    """
    problems: list[str] = []
    for kind, actual, expected in (("input", inputs, spec.expected_inputs()),
                                   ("output", outputs, spec.expected_outputs())):
        found = {name: (dtype, tuple(shape)) for name, dtype, shape in actual}
        for name, (dtype, shape) in expected.items():
            if name not in found:
                problems.append(f"missing {kind} {name!r} ({_describe(dtype, shape)})")
                continue
            got_dtype, got_shape = found[name]
            batch_ok = len(got_shape) == len(shape) and (got_shape[0] == 1 or not isinstance(got_shape[0], int))
            if got_dtype != dtype or not batch_ok or tuple(got_shape[1:]) != shape[1:]:
                if len(got_shape) != len(shape):
                    why = f" (rank {len(got_shape)}, expected {len(shape)})"
                elif any(not isinstance(d, int) for d in got_shape[1:]):
                    why = " (only the batch dimension may be symbolic)"
                else:
                    why = ""
                problems.append(f"{kind} {name!r} is {_describe(got_dtype, got_shape)}, expected "
                                f"{_describe(dtype, shape)}{why}")
        extra = sorted(set(found) - set(expected))
        if extra and kind == "input":
            problems.append(f"unexpected input(s) {', '.join(map(repr, extra))} (the contract feeds only "
                            f"{', '.join(expected)})")
    if problems:
        raise ContractError(f"{source} does not follow the {spec.title} {spec.contract}: " + "; ".join(problems))


def check_observation(spec: VlaSpec, images: Mapping[str, Any], proprio: Any) -> tuple[list[np.ndarray], np.ndarray]:
    """Validate one observation: (images uint8[S, S, 3] in spec.cameras order, proprio float32[P]).

    Cameras the model does not use are ignored. ContractError explains wrong layouts, types and sizes.
    """
    missing = [c for c in spec.cameras if c not in images]
    if missing:
        raise ContractError(f"images: missing camera(s) {', '.join(missing)}; the model needs "
                            f"{', '.join(spec.cameras)} (got {', '.join(images) or 'none'})")
    s = spec.image_size
    ordered = []
    for camera in spec.cameras:
        image = images[camera]
        where = f"images[{camera!r}]"
        if not isinstance(image, np.ndarray):
            raise ContractError(f"{where}: expected a numpy uint8[{s}, {s}, 3] RGB array, got {type(image).__name__}")
        if image.dtype != np.uint8:
            raise ContractError(f"{where}: dtype {image.dtype}, expected uint8 RGB (0-255); do not pre-normalize")
        shape = image.shape
        if image.ndim == 3 and shape[0] == 3 and shape[2] != 3:
            raise ContractError(f"{where}: shape {shape} is channel-first; expected ({s}, {s}, 3) HWC RGB")
        if image.ndim != 3 or shape[2] != 3:
            channels = shape[2] if image.ndim == 3 else 1
            raise ContractError(f"{where}: shape {shape} has {channels} channel(s); expected ({s}, {s}, 3) RGB "
                                "(convert mono/RGBA/BGRA images to rgb8 first)")
        if shape[:2] != (s, s):
            raise ContractError(f"{where}: {shape[1]}x{shape[0]} px, expected {s}x{s}; resize before infer")
        ordered.append(image)
    state = np.asarray(proprio, dtype=np.float32)
    if state.shape != (spec.proprio_dim,):
        raise ContractError(f"proprio: shape {state.shape}, expected ({spec.proprio_dim},)")
    if not np.isfinite(state).all():
        raise ContractError(f"proprio: non-finite entries at {np.flatnonzero(~np.isfinite(state)).tolist()}")
    return ordered, state


def _describe(dtype: str, shape: Sequence[Any]) -> str:
    return f"{dtype.removeprefix('tensor(').removesuffix(')')}[{', '.join(str(d) for d in shape)}]"
