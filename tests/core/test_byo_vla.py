"""Bring your own VLA: a policy that is not this project's VLA, on the embeddings contract rlt.embed/1, gets an RL
token trained on its embeddings (cached), is composed with it into one served rlt.vla/1 graph, and is refused with a
precise message when it breaks the contract."""

import dataclasses
import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from rlt.bench.vla import bench_vla, format_report
from rlt.cli import main
from rlt.models import embed
from rlt.models.contract import EMBED_CONTRACT_VERSION, ContractError, EmbedSpec
from rlt.models.embed import CACHE_NAME, OnnxEmbedder, cached_embeddings, stamp_embed_metadata, train_token_onnx
from rlt.models.export import compose_onnx
from rlt.models.onnx_vla import OnnxVla, fake_spec, read_spec
from rlt.models.rl_token import diagnose_token, load_token
from rlt.models.testing import (
    CnnChunkPolicy,
    export_cnn_policy,
    synthetic_episodes,
    tiny_token_config,
    tiny_vla_config,
    write_dataset,
)

CAMERAS, S, P, H, D = ("front", "wrist"), 16, 12, 6, 4  # the tiny dataset's cameras, image size, proprio, chunk
M, E = CnnChunkPolicy.PREFIX_LEN, CnnChunkPolicy.EMBED_DIM  # 2x2 CNN cells per camera + one proprio token
TOKEN_SET = [f"token.{item}" for item in ("token_dim=8", "slots=1", "layers=1", "heads=2", "mlp_ratio=2", "steps=4",
                                           "batch_size=8", "warmup_steps=1", "checkpoint_every=2")]  # tiny_token_config


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    module, path = export_cnn_policy(tmp_path_factory.mktemp("policy") / "policy.onnx")
    spec = stamp_embed_metadata(path)
    return module, path, spec


@pytest.fixture(scope="module")
def episodes():
    return synthetic_episodes(tiny_vla_config(), episodes=6)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, episodes):
    return write_dataset(tmp_path_factory.mktemp("data") / "dataset", episodes)


def _observation(seed: int = 0):
    rng = np.random.default_rng(seed)
    return ({c: rng.integers(0, 256, (S, S, 3), dtype=np.uint8) for c in CAMERAS},
            rng.normal(0, 0.1, P).astype(np.float32))


def test_the_policy_follows_the_embeddings_contract(policy):
    module, path, spec = policy
    assert (spec.cameras, spec.image_size, spec.chunk_len, spec.proprio_dim, spec.prefix_len, spec.embed_dim) == (
        CAMERAS, S, H, P, M, E)
    assert spec.model_id == embed.graph_id(path) and len(spec.model_id) == 16
    embedder = OnnxEmbedder(path, providers="cpu")
    assert embedder.spec == spec and embedder.batch_size == embed.BATCH_SIZE  # symbolic batch: frames in batches
    images = np.stack([np.stack(list(_observation(k)[0].values())) for k in range(3)])  # uint8[3, K, S, S, 3]
    proprio = np.stack([_observation(k)[1] for k in range(3)])
    chunks, prefix = embedder.embed(images, proprio)
    with torch.no_grad():
        want_chunk, want_prefix = module(*(torch.from_numpy(images[:, k]) for k in range(2)), torch.from_numpy(proprio))
    np.testing.assert_allclose(chunks, want_chunk.numpy(), atol=1e-6)
    np.testing.assert_allclose(prefix, want_prefix.numpy(), atol=1e-5)


def test_train_token_on_its_embeddings_then_serve_the_composed_graph(policy, dataset, tmp_path, capsys, monkeypatch):
    module, path, spec = policy
    out = tmp_path / "token"
    args = ["train", "token", "--vla", str(path), "--data", str(dataset), "--out", str(out), "--quiet"]
    assert main([*args, *(a for s in TOKEN_SET for a in ("--set", s))]) == 0
    assert "RL-token diagnostics on 12 held-out frames" in capsys.readouterr().out  # 1 of 6 episodes held out
    assert (out / CACHE_NAME).is_file()
    first = load_token(out / "token.pt")
    assert (first.prefix_len, first.d_model, first.state_dim) == (M, E, 3)

    def no_inference(*_args, **_kwargs):
        raise AssertionError("the cached embeddings should have been used")

    monkeypatch.setattr(OnnxEmbedder, "embed", no_inference)
    assert main([*args, "--demos", str(dataset), "--no-diagnose", *(a for s in TOKEN_SET for a in ("--set", s))]) == 0
    again = load_token(out / "token.pt")
    for name, value in first.state_dict().items():  # same embeddings, same seed: the same token
        torch.testing.assert_close(again.state_dict()[name], value, rtol=0, atol=0)
    monkeypatch.undo()

    served = tmp_path / "vla.onnx"
    assert main(["export", "--vla", str(path), "--token", str(out / "token.pt"), "--out", str(served)]) == 0
    assert "composed graph vs the two graphs run separately" in capsys.readouterr().out
    vla = OnnxVla(served, providers="cpu")  # the served contract's checks pass
    assert read_spec(served) == vla.spec
    assert (vla.cameras, vla.image_size, vla.chunk_len, vla.axis_names, vla.token_dim, vla.proprio_dim) == (
        CAMERAS, S, H, ("dx", "dy", "dz", "dyaw"), 3, P)
    meta = {p.key: p.value for p in onnx.load(str(served)).metadata_props}
    assert meta["rlt.policy_model_id"] == spec.model_id != vla.model_id
    images, proprio = _observation(5)
    ref_chunk, rl_token = vla.infer(images, proprio)
    assert ref_chunk.shape == (H, D) and rl_token.shape == (3,) and rl_token.dtype == np.float32
    with torch.no_grad():  # the whole graph against PyTorch: the policy, then the token's encoder
        chunk, prefix = module(*(torch.from_numpy(images[c][None]) for c in CAMERAS), torch.from_numpy(proprio[None]))
        z = first.rl_state(prefix)
    np.testing.assert_allclose(ref_chunk, chunk[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(rl_token, z[0].numpy(), atol=1e-4)

    from rlt.serving import VlaServer, VlaServerConfig  # what the vla node wraps

    server = VlaServer(VlaServerConfig(model_path=str(served), cameras=CAMERAS, image_size=S, providers="cpu"))
    assert server.model.model_id == vla.model_id

    result = bench_vla(served, baseline=served, iterations=3, warmup=1)
    assert {"onnx_cpu", "baseline_onnx_cpu"} <= set(result["runtimes"]) and result["onnx_over_baseline_cpu"] > 0
    assert f"baseline {vla.model_id}" in format_report(result)
    other = _vla_graph(tmp_path / "other.onnx", fake_spec("other", image_size=24))
    with pytest.raises(ValueError, match="compare models with the same inputs"):
        bench_vla(served, baseline=other, iterations=2, warmup=0)


def test_the_cache_is_keyed_by_the_graph_and_the_frames(policy, tmp_path, monkeypatch):
    _, path, _ = policy
    calls = []
    real_embed = OnnxEmbedder.embed
    monkeypatch.setattr(OnnxEmbedder, "embed", lambda self, *a, **k: calls.append(self.path) or real_embed(self, *a,
                                                                                                            **k))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 2, S, S, 3), dtype=np.uint8)
    proprio = rng.normal(0, 0.1, (5, P)).astype(np.float32)
    cache = tmp_path / CACHE_NAME
    first = cached_embeddings(path, images, proprio, cache)
    assert first.shape == (5, M, E) and len(calls) == 1
    np.testing.assert_array_equal(cached_embeddings(path, images, proprio, cache), first)
    assert len(calls) == 1  # reused
    restamped = stamp_embed_metadata(path, instruction="another instruction", out_path=tmp_path / "same.onnx")
    cached_embeddings(tmp_path / "same.onnx", images, proprio, cache)
    assert len(calls) == 1 and restamped.model_id == embed.graph_id(path)  # metadata is not the graph
    cached_embeddings(path, images, proprio + 1.0, cache)
    assert len(calls) == 2  # other frames
    _, retrained = export_cnn_policy(tmp_path / "retrained.onnx", seed=1)
    stamp_embed_metadata(retrained)
    cached_embeddings(retrained, images, proprio + 1.0, cache)
    assert len(calls) == 3 and calls[-1] == retrained  # another graph


def test_robot_datasets_without_the_privileged_offset_train_and_diagnose(policy, episodes, tmp_path, capsys):
    _, path, _ = policy
    robot = [dataclasses.replace(ep, tip_offset=np.full_like(ep.tip_offset, np.nan)) for ep in episodes]
    checkpoint = train_token_onnx(path, robot, tmp_path / "token", tiny_token_config(), progress=False)
    report = diagnose_token(checkpoint, path, robot)
    assert np.isfinite(report["loss_real"]) and np.isfinite(report["goal_rmse_0"])
    assert not any(k.startswith("probe_r2") for k in report) and "no probe" in capsys.readouterr().out
    with pytest.raises(ValueError, match="pass `demos`"):
        diagnose_token(checkpoint)  # in-memory episodes: nothing to reload


def test_a_token_of_another_policy_is_refused(policy, episodes, tmp_path):
    _, path, _ = policy
    _, other = export_cnn_policy(tmp_path / "other.onnx", seed=3)
    stamp_embed_metadata(other)
    checkpoint = train_token_onnx(other, episodes, tmp_path / "token", tiny_token_config(), progress=False)
    with pytest.raises(ValueError, match=r"was trained on the embeddings of graph .*: retrain the token on it"):
        compose_onnx(path, checkpoint, tmp_path / "vla.onnx")
    with pytest.raises(ValueError, match="trained on the embeddings of graph"):
        diagnose_token(checkpoint, path, episodes)


def test_cli_errors_name_the_missing_piece(policy, tmp_path, capsys):
    _, path, _ = policy
    assert main(["train", "token", "--vla", str(path), "--out", str(tmp_path)]) == 2
    assert "pass --data DATASET" in capsys.readouterr().err
    assert main(["export", "--vla", str(path), "--embed-only", "--out", str(tmp_path / "x.onnx")]) == 2
    assert "already ONNX" in capsys.readouterr().err


def _embed_graph(path, spec: EmbedSpec, *, drop=None, prefix_shape=None, prefix_type=TensorProto.FLOAT,
                 image_type=TensorProto.UINT8, metadata=None):
    """A hand-built graph with constant outputs that follows (or breaks) the embeddings contract."""
    inputs = [helper.make_tensor_value_info(f"image_{c}", image_type, [1, spec.image_size, spec.image_size, 3])
              for c in spec.cameras]
    inputs.append(helper.make_tensor_value_info("proprio", TensorProto.FLOAT, [1, spec.proprio_dim]))
    outputs = {"ref_chunk": (TensorProto.FLOAT, [1, spec.chunk_len, spec.action_dim]),
               "prefix_embeddings": (prefix_type, prefix_shape or [1, spec.prefix_len, spec.embed_dim])}
    meta = spec.to_metadata() if metadata is None else metadata
    return _constant_graph(path, inputs, {k: v for k, v in outputs.items() if k != drop}, meta)


def _vla_graph(path, spec):
    inputs = [helper.make_tensor_value_info(f"image_{c}", TensorProto.UINT8, [1, spec.image_size, spec.image_size, 3])
              for c in spec.cameras]
    inputs.append(helper.make_tensor_value_info("proprio", TensorProto.FLOAT, [1, spec.proprio_dim]))
    outputs = {"ref_chunk": (TensorProto.FLOAT, [1, spec.chunk_len, spec.action_dim]),
               "rl_token": (TensorProto.FLOAT, [1, spec.token_dim])}
    return _constant_graph(path, inputs, outputs, spec.to_metadata())


def _constant_graph(path, inputs, outputs, metadata):
    nodes, values = [], []
    for name, (dtype, shape) in outputs.items():
        array = np.ones(shape, helper.tensor_dtype_to_np_dtype(dtype))
        nodes.append(helper.make_node("Constant", [], [name], value=helper.make_tensor(f"{name}_v", dtype, shape,
                                                                                       array.ravel())))
        values.append(helper.make_tensor_value_info(name, dtype, shape))
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, values),
                              opset_imports=[helper.make_opsetid("", 17)])
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


SPEC = EmbedSpec(cameras=("front",), image_size=S, chunk_len=H, action_names=("dx", "dy", "dz", "dyaw"),
                 proprio_dim=P, prefix_len=M, embed_dim=E, instruction="insert", model_id="handmade")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"drop": "prefix_embeddings"}, r"missing output 'prefix_embeddings' \(float\[1, 9, 12\]\)"),
     ({"prefix_shape": [1, M * E]},
      r"output 'prefix_embeddings' is float\[1, 108\], expected float\[1, 9, 12\] \(rank 2, expected 3\)"),
     ({"prefix_type": TensorProto.DOUBLE}, r"output 'prefix_embeddings' is double\[1, 9, 12\], expected float\[1, 9"),
     ({"image_type": TensorProto.FLOAT}, r"input 'image_front' is float\[1, 16, 16, 3\], expected uint8"),
     ({"metadata": {k: v for k, v in SPEC.to_metadata().items() if k != "rlt.embed_dim"}},
      r"metadata lacks rlt.embed_dim \(contract rlt.embed/1\)"),
     ({"metadata": {**SPEC.to_metadata(), "rlt.contract": "rlt.vla/1"}},
      "rlt.contract='rlt.vla/1', expected 'rlt.embed/1': it is an exported VLA with its RL token already composed")],
)
def test_embeddings_contract_violations_are_named(tmp_path, kwargs, message):
    path = _embed_graph(tmp_path / "bad.onnx", SPEC, **kwargs)
    with pytest.raises(ContractError, match=message):
        OnnxEmbedder(path, providers="cpu")
    with pytest.raises(ContractError, match=message):
        embed.read_embed_spec(path)  # what `rlt train token` and `rlt export` check first


def test_a_hand_built_policy_on_the_contract_loads(tmp_path):
    embedder = OnnxEmbedder(_embed_graph(tmp_path / "ok.onnx", SPEC), providers="cpu")
    assert embedder.spec == SPEC and embedder.batch_size == 1  # batch fixed at 1: one frame per call
    chunks, prefix = embedder.embed(np.zeros((3, 1, S, S, 3), np.uint8), np.zeros((3, P), np.float32))
    assert chunks.shape == (3, H, D) and prefix.shape == (3, M, E)
    with pytest.raises(ContractError, match=r"images: float32\[3, 1, 16, 16, 3\], expected uint8\[3, 1, 16, 16, 3\]"):
        embedder.embed(np.zeros((3, 1, S, S, 3), np.float32), np.zeros((3, P), np.float32))


def test_serving_a_policy_without_its_token_says_to_compose_it(tmp_path):
    path = _embed_graph(tmp_path / "policy.onnx", SPEC)
    with pytest.raises(ContractError, match=r"expected 'rlt\.vla/1': it is a policy without an RL token; compose"):
        OnnxVla(path)
    assert EMBED_CONTRACT_VERSION in SPEC.to_metadata().values()


def test_stamping_names_what_the_graph_lacks(tmp_path):
    _, path = export_cnn_policy(tmp_path / "chunk_only.onnx", outputs=("ref_chunk",))
    with pytest.raises(ContractError, match="has no prefix_embeddings"):
        stamp_embed_metadata(path)
    _, path = export_cnn_policy(tmp_path / "policy.onnx")
    with pytest.raises(ContractError, match="3 action names dx,dy,dz for a ref_chunk of 4 axes"):
        stamp_embed_metadata(path, action_names=("dx", "dy", "dz"))


def test_a_policy_with_batch_fixed_at_one_runs_frame_by_frame_and_composes(episodes, tmp_path):
    torch.manual_seed(4)
    module = CnnChunkPolicy().eval()
    sample = (torch.zeros(1, S, S, 3, dtype=torch.uint8), torch.zeros(1, S, S, 3, dtype=torch.uint8), torch.zeros(1, P))
    path = tmp_path / "static.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, sample, str(path), input_names=["image_front", "image_wrist", "proprio"],
                          output_names=["ref_chunk", "prefix_embeddings"], opset_version=17, dynamo=False)
    stamp_embed_metadata(path)
    assert OnnxEmbedder(path, providers="cpu").batch_size == 1
    checkpoint = train_token_onnx(path, episodes, tmp_path / "token", tiny_token_config(), progress=False)
    report = compose_onnx(path, checkpoint, tmp_path / "vla.onnx")
    assert report.max_abs_diff_ref_chunk < 1e-6 and report.max_abs_diff_rl_token < 1e-5
    assert OnnxVla(report.path, providers="cpu").token_dim == 3


def test_composing_the_projects_own_vla_equals_its_single_export(tmp_path):
    """The project's VLA written on rlt.embed/1 and composed with a token gives the single export's outputs."""
    from rlt.models.export import export_onnx
    from rlt.models.testing import write_tiny_checkpoints

    torch.manual_seed(0)
    cfg = tiny_vla_config()
    write_tiny_checkpoints(tmp_path, vla_name_in_token="vla.pt")
    single = export_onnx(tmp_path / "vla.pt", tmp_path / "token.pt", tmp_path / "single.onnx")
    policy = tmp_path / "policy.onnx"
    assert main(["export", "--vla", str(tmp_path / "vla.pt"), "--embed-only", "--out", str(policy)]) == 0
    assert OnnxEmbedder(policy, providers="cpu").spec.prefix_len == cfg.prefix_len
    with pytest.raises(ValueError, match=r"trained on the VLA checkpoint vla\.pt, not on an rlt\.embed/1 policy"):
        compose_onnx(policy, tmp_path / "token.pt", tmp_path / "composed.onnx")
    composed = compose_onnx(policy, tmp_path / "token.pt", tmp_path / "composed.onnx", require_trained_on=False)
    a, b = OnnxVla(single.path, providers="cpu"), OnnxVla(composed.path, providers="cpu")
    assert a.spec == dataclasses.replace(b.spec, model_id=a.model_id)  # the same contract, another graph
    for seed in range(3):
        images, proprio = _observation(seed)
        for x, y in zip(a.infer(images, proprio), b.infer(images, proprio), strict=True):
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)
