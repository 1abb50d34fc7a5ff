"""Bring your own VLA: the RL token trained on another policy's embeddings (contract `rlt.embed/1`).

A lab whose policy is its own network (an ACT, a SmolVLA, anything exported to ONNX) exports it with the
inputs of `rlt.vla/1` and two outputs, the reference chunk and the final-layer embeddings the RL token compresses
(`rlt.models.contract.EMBED_CONTRACT`). This module owns the runtime side of that contract:

    stamp_embed_metadata  write the contract's metadata into a freshly exported graph, sizes read from its shapes
    OnnxEmbedder          run such a graph with ONNX Runtime over a dataset's frames (batched when it allows)
    graph_id              content hash of a graph (metadata excluded): what the cache and a token's provenance use
    cached_embeddings     every frame's embeddings, computed once and kept in an .npz beside the token
    train_token_onnx      the RL token trained on them (the losses of `rlt.models.rl_token.fit_token`, as for the
                          project's own VLA)
    held_out_embeddings   the held-out frames and embeddings its diagnostics (`diagnose_token`) read

Composing the policy with the trained token into the one served `rlt.vla/1` graph is
`rlt.models.export.compose_onnx` (`rlt export --vla POLICY.onnx --token TOKEN.pt`).

Frames: every episode of the datasets, successful or not (the goal loss skips failed ones), split by episode with
`TokenConfig.holdout_fraction` and `seed`; the split is stored in the token checkpoint. The privileged tip offset
is not read here (a robot's datasets have none); the diagnostics probe it only where it is known.

Cache (`OUT/embeddings.npz`): the embeddings of every frame, float32[N, M, E], with a key made of the graph's
`graph_id` and a sha256 of the frames' model inputs (images, proprio, in order). Any other key (another model,
re-recorded or reordered data, other cameras) recomputes and overwrites it. Hashing the inputs costs one pass over
the images; it is content-based because a path and a size can stay the same when a dataset is re-recorded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rlt.models.config import ACTION_NAMES, DEFAULT_INSTRUCTION, TokenConfig
from rlt.models.contract import (
    EMBED_CONTRACT_VERSION,
    IMAGE_INPUT_PREFIX,
    PREFIX_OUTPUT,
    PROPRIO_INPUT,
    REF_CHUNK_OUTPUT,
    ContractError,
    EmbedSpec,
    check_io,
)

if TYPE_CHECKING:  # torch-side types; this module imports torch only where it trains
    from torch import Tensor

    from rlt.models.bc import DemoSource
    from rlt.models.data import Frames

CACHE_NAME = "embeddings.npz"
BATCH_SIZE = 64  # frames per ONNX Runtime call when the graph's batch dimension is symbolic
Signature = list[tuple[str, str, list[Any]]]  # (name, ONNX Runtime type string, shape) per input or output


def graph_id(path: str | Path) -> str:
    """sha256 (16 hex digits) of the ONNX model at `path` without its metadata_props, plus the bytes of any
    external-data files it references (weights of models over 2 GB): the rlt.embed/1 model id, recomputed."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"policy model {path} does not exist")
    proto = onnx.load(str(path), load_external_data=False)
    del proto.metadata_props[:]
    digest = hashlib.sha256(proto.SerializeToString())
    files = sorted({e.value for t in _initializers(proto.graph) for e in t.external_data if e.key == "location"})
    for name in files:
        with open(path.parent / name, "rb") as f:
            while block := f.read(1 << 24):  # 16 MiB
                digest.update(block)
    return digest.hexdigest()[:16]


def proto_signature(proto: Any) -> tuple[Signature, Signature]:
    """(inputs, outputs) of an onnx.ModelProto as ONNX Runtime reports them: ("tensor(float)", [1, "batch", 5])."""
    import onnx

    initializers = {t.name for t in proto.graph.initializer}

    def describe(value: Any) -> tuple[str, str, list[Any]]:
        tensor = value.type.tensor_type
        dtype = onnx.TensorProto.DataType.Name(tensor.elem_type).lower() if value.type.HasField("tensor_type") else "?"
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim]
        return value.name, f"tensor({dtype})", dims

    inputs = [describe(v) for v in proto.graph.input if v.name not in initializers]
    return inputs, [describe(v) for v in proto.graph.output]


def stamp_embed_metadata(path: str | Path, *, action_names: Sequence[str] = ACTION_NAMES,
                         instruction: str = DEFAULT_INSTRUCTION, out_path: str | Path | None = None) -> EmbedSpec:
    """Write the rlt.embed/1 metadata into the ONNX graph at `path` (or a copy at `out_path`); returns its spec.

    Cameras (the image_<camera> inputs, in order), S and P are read from the graph's inputs; H, D, M and E from its
    outputs after one ONNX Runtime run on zero inputs (batch 1). Output dimensions the graph declares symbolic
    (torch.onnx with dynamic axes names every dimension after a reshape) are replaced by those sizes, except the
    batch. The action axis names and the instruction are the caller's. ContractError if the graph does not follow
    the contract (the message lists every problem).
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"policy model {path} does not exist")
    proto = onnx.load(str(path), load_external_data=False)  # weights over 2 GB stay in their external files
    inputs, outputs = proto_signature(proto)
    cameras = tuple(n.removeprefix(IMAGE_INPUT_PREFIX) for n, _, _ in inputs if n.startswith(IMAGE_INPUT_PREFIX))
    names = {name for name, _, _ in (*inputs, *outputs)}
    missing = [n for n in (PROPRIO_INPUT, REF_CHUNK_OUTPUT, PREFIX_OUTPUT) if n not in names]
    if not cameras or missing:
        what = ", ".join([*missing, *([] if cameras else [f"{IMAGE_INPUT_PREFIX}<camera>"])])
        raise ContractError(f"{path} does not follow the policy-embeddings contract {EMBED_CONTRACT_VERSION}: it has "
                            f"no {what} (inputs: {', '.join(n for n, _, _ in inputs)}; outputs: "
                            f"{', '.join(n for n, _, _ in outputs)})")
    ran = _run_once(path, inputs)  # output name -> concrete shape at batch 1
    for value in proto.graph.output:
        for axis, d in enumerate(value.type.tensor_type.shape.dim):
            if axis > 0 and not d.HasField("dim_value") and value.name in ran and len(ran[value.name]) > axis:
                d.dim_value = ran[value.name][axis]  # clears dim_param (a oneof)
    inputs, outputs = proto_signature(proto)
    shapes = {name: shape for name, _, shape in (*inputs, *outputs)}

    def dim(name: str, axis: int) -> int:
        shape = shapes[name]
        value = shape[axis] if axis < len(shape) else None
        return value if isinstance(value, int) and value > 0 else 1  # check_io below names a wrong shape

    spec = EmbedSpec(cameras=cameras, image_size=dim(f"{IMAGE_INPUT_PREFIX}{cameras[0]}", 1),
                     chunk_len=dim(REF_CHUNK_OUTPUT, 1), action_names=tuple(action_names),
                     proprio_dim=dim(PROPRIO_INPUT, 1), prefix_len=dim(PREFIX_OUTPUT, 1),
                     embed_dim=dim(PREFIX_OUTPUT, 2), instruction=instruction, model_id="unstamped")
    if spec.action_dim != dim(REF_CHUNK_OUTPUT, 2):
        raise ContractError(f"{path}: {spec.action_dim} action names {','.join(action_names)} for a ref_chunk of "
                            f"{dim(REF_CHUNK_OUTPUT, 2)} axes; pass one name per axis")
    check_io(spec, inputs, outputs, source=str(path))
    out_path = Path(out_path or path)
    if out_path.resolve().parent != path.resolve().parent and any(
            e.key == "location" for t in _initializers(proto.graph) for e in t.external_data):
        raise ValueError(f"{path} keeps its weights in external files: write the stamped copy into its folder")
    del proto.metadata_props[:]
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    onnx.save(proto, str(tmp))
    spec = dataclasses.replace(spec, model_id=graph_id(tmp))  # the graph as written, metadata excluded
    for key, value in spec.to_metadata().items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(tmp))
    tmp.replace(out_path)
    return spec


def _run_once(path: Path, inputs: Signature) -> dict[str, tuple[int, ...]]:
    """Output name -> shape after one ONNX Runtime (CPU) run of the graph at `path` on zero inputs of the declared
    types (symbolic dimensions 1); ContractError naming the failure if it does not run."""
    import onnxruntime as ort

    types = {"tensor(uint8)": np.uint8, "tensor(float)": np.float32, "tensor(double)": np.float64,
             "tensor(float16)": np.float16, "tensor(int64)": np.int64, "tensor(int32)": np.int32}
    feeds = {}
    for name, dtype, shape in inputs:
        if dtype not in types:
            raise ContractError(f"{path}: input {name!r} is {dtype}; the contract feeds uint8 images and float proprio")
        feeds[name] = np.zeros([d if isinstance(d, int) and d > 0 else 1 for d in shape], types[dtype])
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        return {name: tuple(np.shape(value)) for name, value in zip(names, session.run(names, feeds), strict=True)}
    except Exception as exc:  # ONNX Runtime raises its own exception types
        raise ContractError(f"{path}: one run on zero inputs (batch 1) failed: {exc}") from None


def read_embed_spec(path: str | Path) -> EmbedSpec:
    """The `EmbedSpec` of the ONNX policy at `path`, its metadata and graph checked against the contract."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"policy model {path} does not exist")
    proto = onnx.load(str(path), load_external_data=False)
    spec = EmbedSpec.from_metadata({p.key: p.value for p in proto.metadata_props}, source=str(path))
    check_io(spec, *proto_signature(proto), source=str(path))
    return spec


class OnnxEmbedder:
    """An ONNX policy on the embeddings contract, run with ONNX Runtime over many frames."""

    def __init__(self, path: str | Path, providers: str | Sequence[str] = "auto", threads: int = 0) -> None:
        from rlt.models.onnx_vla import ort_session

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"policy model {self.path} does not exist")
        self.session = ort_session(self.path, providers, threads)
        self.provider: str = self.session.get_providers()[0]
        meta = self.session.get_modelmeta().custom_metadata_map
        self.spec = EmbedSpec.from_metadata(meta, source=str(self.path))
        inputs, outputs = _ort_signature(self.session.get_inputs()), _ort_signature(self.session.get_outputs())
        check_io(self.spec, inputs, outputs, source=str(self.path))
        # frames per call: the whole batch when every input's batch dimension is symbolic, else one
        self.batch_size = BATCH_SIZE if all(not isinstance(shape[0], int) for _, _, shape in inputs) else 1
        self._image_inputs = [f"{IMAGE_INPUT_PREFIX}{c}" for c in self.spec.cameras]

    def embed(self, images: np.ndarray, proprio: np.ndarray, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """images uint8[N, K, S, S, 3] (cameras in spec order), proprio float32[N, P] physical units ->
        (ref_chunk float32[N, H, D], prefix_embeddings float32[N, M, E])."""
        from tqdm import tqdm

        spec, n = self.spec, len(images)
        expected = (n, len(spec.cameras), spec.image_size, spec.image_size, 3)
        if images.dtype != np.uint8 or images.shape != expected:
            raise ContractError(f"images: {images.dtype}{list(images.shape)}, expected uint8{list(expected)}")
        if proprio.shape != (n, spec.proprio_dim):
            raise ContractError(f"proprio: shape {proprio.shape}, expected ({n}, {spec.proprio_dim})")
        chunks = np.empty((n, spec.chunk_len, spec.action_dim), np.float32)
        prefix = np.empty((n, spec.prefix_len, spec.embed_dim), np.float32)
        step = self.batch_size
        for i in tqdm(range(0, n, step), desc="embeddings", unit="batch", disable=not progress, dynamic_ncols=True):
            s = slice(i, i + step)
            feeds = {name: np.ascontiguousarray(images[s, k]) for k, name in enumerate(self._image_inputs)}
            feeds[PROPRIO_INPUT] = np.ascontiguousarray(proprio[s], np.float32)
            chunks[s], prefix[s] = self.session.run([REF_CHUNK_OUTPUT, PREFIX_OUTPUT], feeds)
        return chunks, prefix

    def __repr__(self) -> str:
        return f"OnnxEmbedder({str(self.path)!r}, model_id={self.spec.model_id}, provider={self.provider})"


def frames_digest(images: np.ndarray, proprio: np.ndarray) -> str:
    """sha256 (hex) of a dataset's model inputs: images uint8[N, K, S, S, 3] and proprio float32[N, P], in order."""
    digest = hashlib.sha256(f"{images.dtype}{images.shape}{proprio.dtype}{proprio.shape}".encode())
    for array in (images, proprio):
        digest.update(np.ascontiguousarray(array).reshape(-1).view(np.uint8))
    return digest.hexdigest()


def cached_embeddings(model_path: str | Path, images: np.ndarray, proprio: np.ndarray, cache: str | Path, *,
                      providers: str | Sequence[str] = "auto", progress: bool = False) -> np.ndarray:
    """prefix_embeddings float32[N, M, E] of the policy at `model_path` on every frame, from `cache` (an .npz)
    when its key matches the graph and the frames, else computed with ONNX Runtime and written there."""
    cache = Path(cache)
    key = {"contract": EMBED_CONTRACT_VERSION, "graph_id": graph_id(model_path),
           "frames": frames_digest(images, proprio)}
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as stored:
            if json.loads(str(stored["key"])) == key:
                return stored["prefix_embeddings"]
        if progress:
            print(f"{cache} holds the embeddings of another model or other frames: recomputing")
    embedder = OnnxEmbedder(model_path, providers)
    _, prefix = embedder.embed(images, proprio, progress=progress)  # float32[N, M, E]
    if not np.isfinite(prefix).all():
        raise ValueError(f"{model_path}: prefix_embeddings has non-finite values on "
                         f"{int((~np.isfinite(prefix)).any((1, 2)).sum())} of {len(prefix)} frames")
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.stem}.tmp.npz")
    np.savez(tmp, prefix_embeddings=prefix, key=np.array(json.dumps(key)))
    tmp.replace(cache)
    return prefix


def policy_frames(spec: EmbedSpec, episodes: Sequence[Any], source: str) -> Frames:
    """`rlt.models.data.Frames` of every episode, checked against what the policy reads (cameras, S, P)."""
    from rlt.models.data import frames_from_episodes

    frames = frames_from_episodes(episodes, spec.cameras, spec.chunk_len)
    size = frames.images.shape[2:4]
    if size != (spec.image_size, spec.image_size):
        raise ValueError(f"{source}: images are {size[0]}x{size[1]} px; the policy's rlt.image_size is "
                         f"{spec.image_size}")
    if frames.proprio.shape[1] != spec.proprio_dim:
        raise ValueError(f"{source}: proprio has {frames.proprio.shape[1]} entries; the policy's rlt.proprio_dim is "
                         f"{spec.proprio_dim}")
    return frames


def train_token_onnx(model_path: str | Path, demos: DemoSource, out_dir: str | Path, cfg: TokenConfig | None = None, *,
                     providers: str | Sequence[str] = "auto", progress: bool = True) -> Path:
    """Train the RL token on the embeddings of the rlt.embed/1 policy at `model_path` over the training episodes of
    `demos` (dataset paths, or episodes in memory); returns `out_dir/token.pt`.

    The embeddings of every frame are cached in `out_dir/embeddings.npz` (see the module doc).
    """
    import torch

    from rlt.models.bc import demo_paths, select_episodes
    from rlt.models.data import split_episodes
    from rlt.models.rl_token import fit_token, without_images
    from rlt.models.trainer import set_threads

    cfg = cfg or TokenConfig()
    set_threads(cfg.num_threads)
    spec = read_embed_spec(model_path)
    episodes = select_episodes(demos, successes_only=False)
    frames = policy_frames(spec, episodes, f"datasets {', '.join(demo_paths(demos)) or '(in memory)'}")
    train_ids, holdout_ids = split_episodes(len(episodes), cfg.holdout_fraction, cfg.seed)
    del episodes
    prefix = cached_embeddings(model_path, frames.images, frames.proprio, Path(out_dir) / CACHE_NAME,
                               providers=providers, progress=progress)
    keep = np.isin(frames.episode, train_ids)  # bool[N]
    train_prefix = torch.from_numpy(np.ascontiguousarray(prefix[keep]))  # float32[N_train, M, E]
    goal_frames = without_images(frames).subset(keep)
    del frames, prefix
    provenance = {
        "vla_checkpoint": str(model_path),
        "demos": demo_paths(demos),
        "rollouts": [],
        "embed_model": {"contract": EMBED_CONTRACT_VERSION, "graph_id": graph_id(model_path),
                        "metadata": spec.to_metadata()},
        "split": {"n_episodes": len(train_ids) + len(holdout_ids), "train": train_ids.tolist(),
                  "holdout": holdout_ids.tolist()},
    }
    return fit_token(train_prefix, goal_frames, out_dir, cfg, provenance, progress=progress)


def check_trained_on(ckpt: dict[str, Any], model_path: str | Path, source: str) -> None:
    """Raise ValueError unless the token checkpoint `ckpt` was trained on the embeddings of the graph at
    `model_path` (same `graph_id`)."""
    trained = ckpt.get("embed_model")
    if not trained:
        raise ValueError(f"{source} was trained on the VLA checkpoint {ckpt.get('vla_checkpoint')}, not on an "
                         f"{EMBED_CONTRACT_VERSION} policy: train a token on {model_path} with "
                         f"`rlt train token --vla {model_path} --data DATASET`")
    found = graph_id(model_path)
    if trained["graph_id"] != found:
        raise ValueError(f"{source} was trained on the embeddings of graph {trained['graph_id']} "
                         f"({ckpt.get('vla_checkpoint')}); {model_path} is graph {found}: retrain the token on it")


def held_out_embeddings(ckpt: dict[str, Any], token_checkpoint: str | Path, model_path: str | Path | None,
                        demos: DemoSource | None) -> tuple[Frames, Frames, Tensor, Tensor]:
    """(training frames, held-out frames, their embeddings float32 tensors [N, M, E]) of a token trained by
    `train_token_onnx`, for `diagnose_token`; the model and datasets default to those it was trained on."""
    import torch

    from rlt.models.bc import select_episodes

    model_path = model_path or ckpt["vla_checkpoint"]
    check_trained_on(ckpt, model_path, str(token_checkpoint))
    demos = demos if demos is not None else ckpt["demos"]
    if not demos:
        raise ValueError(f"{token_checkpoint} was trained on in-memory demos; pass `demos`")
    split = ckpt["split"]
    episodes = select_episodes(demos, successes_only=False)
    if len(episodes) != split["n_episodes"]:
        raise ValueError(f"the datasets have {len(episodes)} episodes, the token {token_checkpoint} was trained on "
                         f"{split['n_episodes']}: use the same datasets")
    if not split["holdout"]:
        raise ValueError(f"{token_checkpoint} has no held-out episodes (one episode, or holdout_fraction too small)")
    frames = policy_frames(read_embed_spec(model_path), episodes, "datasets")
    del episodes
    prefix = cached_embeddings(model_path, frames.images, frames.proprio, Path(token_checkpoint).parent / CACHE_NAME)
    parts = []
    for ids in (split["train"], split["holdout"]):
        keep = np.isin(frames.episode, ids)  # bool[N]
        parts.append((frames.subset(keep), torch.from_numpy(np.ascontiguousarray(prefix[keep]))))
    (fit_frames, fit_prefix), (test_frames, test_prefix) = parts
    return fit_frames, test_frames, fit_prefix, test_prefix


def _initializers(graph: Any) -> list[Any]:
    """Every initializer of `graph` and of its subgraphs (If / Loop bodies)."""
    found = list(graph.initializer)
    for node in graph.node:
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                found += _initializers(sub)
    return found


def _ort_signature(args: Sequence[Any]) -> Signature:
    return [(a.name, a.type, list(a.shape)) for a in args]
