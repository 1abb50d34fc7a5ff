"""ONNX export and serving: PyTorch parity, the I/O contract checks, OnnxVla's input errors, FakeVla, the bench."""

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from rlt.bench.vla import bench_vla, format_report
from rlt.models.contract import CONTRACT_VERSION, ContractError, VlaSpec
from rlt.models.export import ExportedVla, export_onnx
from rlt.models.onnx_vla import CPU, CUDA, FakeVla, OnnxVla, fake_spec, resolve_providers
from rlt.models.testing import tiny_vla_config, write_tiny_checkpoints


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny")
    return write_tiny_checkpoints(root)


@pytest.fixture(scope="module")
def exported(tiny_checkpoints, tmp_path_factory):
    return export_onnx(*tiny_checkpoints, tmp_path_factory.mktemp("onnx") / "vla.onnx")


def _observation(spec: VlaSpec, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = {c: rng.integers(0, 256, (spec.image_size, spec.image_size, 3), dtype=np.uint8) for c in spec.cameras}
    return images, rng.normal(0, 1, spec.proprio_dim).astype(np.float32)


def test_onnx_matches_pytorch(exported, tiny_checkpoints):
    from rlt.models.rl_token import load_token
    from rlt.models.vla import load_vla

    assert exported.max_abs_diff_ref_chunk < 1e-5 and exported.max_abs_diff_rl_token < 1e-4
    model = ExportedVla(load_vla(tiny_checkpoints[0]), load_token(tiny_checkpoints[1])).eval()
    vla = OnnxVla(exported.path, providers="cpu")
    images, proprio = _observation(vla.spec, seed=7)
    with torch.no_grad():
        chunk, z = model(*(torch.from_numpy(images[c][None]) for c in vla.cameras), torch.from_numpy(proprio[None]))
    got_chunk, got_z = vla.infer(images, proprio)
    assert got_chunk.shape == (6, 4) and got_chunk.dtype == np.float32
    assert got_z.shape == (3,)  # the goal entries of z_rl (TokenConfig.rl_entries)
    np.testing.assert_allclose(got_chunk, chunk[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(got_z, z[0].numpy(), atol=1e-4)


def test_metadata_and_model_id(exported, tiny_checkpoints, tmp_path):
    proto = onnx.load(str(exported.path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["rlt.contract"] == CONTRACT_VERSION
    assert meta["rlt.cameras"] == "front,wrist" and meta["rlt.action_names"] == "dx,dy,dz,dyaw"
    assert meta["rlt.image_size"] == "16" and meta["rlt.chunk_len"] == "6" and meta["rlt.token_dim"] == "3"
    assert meta["rlt.instruction"] == tiny_vla_config().instruction
    assert CONTRACT_VERSION in proto.doc_string
    again = export_onnx(*tiny_checkpoints, tmp_path / "again.onnx")
    assert again.spec.model_id == exported.spec.model_id and len(again.spec.model_id) == 16
    vla = OnnxVla(exported.path)
    assert vla.provider in (CPU, CUDA) and vla.model_id == exported.spec.model_id
    assert (vla.cameras, vla.image_size, vla.axis_names) == (("front", "wrist"), 16, ("dx", "dy", "dz", "dyaw"))


def _graph(path, spec: VlaSpec, *, drop_output=None, image_type=TensorProto.UINT8, metadata=True, extra_input=False):
    """A hand-built graph that follows (or breaks) the contract: outputs are constants."""
    inputs = [helper.make_tensor_value_info(f"image_{c}", image_type, [1, spec.image_size, spec.image_size, 3])
              for c in spec.cameras]
    inputs.append(helper.make_tensor_value_info("proprio", TensorProto.FLOAT, [1, spec.proprio_dim]))
    if extra_input:
        inputs.append(helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, 4]))
    shapes = {"ref_chunk": [1, spec.chunk_len, spec.action_dim], "rl_token": [1, spec.token_dim]}
    nodes, outputs = [], []
    for name, shape in shapes.items():
        if name == drop_output:
            continue
        value = helper.make_tensor(f"{name}_value", TensorProto.FLOAT, shape, np.ones(shape, np.float32).ravel())
        nodes.append(helper.make_node("Constant", [], [name], value=value))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs),
                              opset_imports=[helper.make_opsetid("", 17)])
    if metadata:
        for key, value in spec.to_metadata().items():
            model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


def test_any_model_on_the_contract_works(tmp_path):
    spec = fake_spec("handmade", cameras=("left", "right", "top"), image_size=24, chunk_len=5, token_dim=3)
    vla = OnnxVla(_graph(tmp_path / "m.onnx", spec))
    chunk, z = vla.infer(*_observation(spec))
    assert chunk.shape == (5, 4) and z.shape == (3,) and vla.spec == spec


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"drop_output": "rl_token"}, r"missing output 'rl_token' \(float\[1, 3\]\)"),
     ({"image_type": TensorProto.FLOAT}, r"input 'image_left' is float\[1, 24, 24, 3\], expected uint8"),
     ({"metadata": False}, "metadata lacks rlt.contract, rlt.cameras"),
     ({"extra_input": True}, "unexpected input.*'depth'")],
)
def test_contract_violations_are_named(tmp_path, kwargs, message):
    spec = fake_spec("bad", cameras=("left",), image_size=24, token_dim=3)
    with pytest.raises(ContractError, match=message):
        OnnxVla(_graph(tmp_path / "bad.onnx", spec, **kwargs))


def test_metadata_that_disagrees_with_the_graph(tmp_path):
    spec = fake_spec("lies", cameras=("left",), image_size=24)
    path = _graph(tmp_path / "m.onnx", spec)
    proto = onnx.load(str(path))
    next(p for p in proto.metadata_props if p.key == "rlt.image_size").value = "32"
    onnx.save(proto, str(path))
    with pytest.raises(ContractError, match=r"input 'image_left' is uint8\[1, 24, 24, 3\], expected uint8\[1, 32"):
        OnnxVla(path)
    with pytest.raises(FileNotFoundError, match="rlt export"):
        OnnxVla(tmp_path / "nope.onnx")


@pytest.mark.parametrize("vla_kind", ["onnx", "fake"])
@pytest.mark.parametrize(
    ("mutate", "message"),
    [(lambda im, p: (dict(im, front=im["front"].astype(np.float32)), p), r"images\['front'\]: dtype float32"),
     (lambda im, p: (dict(im, front=im["front"].transpose(2, 0, 1)), p), "channel-first"),
     (lambda im, p: (dict(im, front=np.zeros((16, 16, 4), np.uint8)), p), "4 channel"),
     (lambda im, p: (dict(im, front=np.zeros((20, 20, 3), np.uint8)), p), "20x20 px, expected 16x16"),
     (lambda im, p: ({"front": im["front"]}, p), "missing camera.*wrist"),
     (lambda im, p: (im, p[:5]), r"proprio: shape \(5,\), expected \(12,\)"),
     (lambda im, p: (im, np.full(12, np.nan, np.float32)), "proprio: non-finite")],
)
def test_bad_observations_raise_clear_errors(exported, vla_kind, mutate, message):
    vla = OnnxVla(exported.path) if vla_kind == "onnx" else FakeVla(image_size=16)
    images, proprio = mutate(*_observation(vla.spec))
    with pytest.raises(ContractError, match=message):
        vla.infer(images, proprio)


def test_fake_vla_is_deterministic_and_follows_the_spec():
    a, b, other = FakeVla(seed=1), FakeVla(seed=1), FakeVla(seed=2)
    images, proprio = _observation(a.spec)
    images["unused_camera"] = np.zeros((3, 3), np.uint8)  # cameras the model does not use are ignored
    chunk, z = a.infer(images, proprio)
    assert chunk.shape == (20, 4) and chunk.dtype == np.float32 and z.shape == (64,) and z.dtype == np.float32
    np.testing.assert_array_equal(chunk, b.infer(images, proprio)[0])
    assert not np.array_equal(z, other.infer(images, proprio)[1])
    assert not np.array_equal(z, a.infer(images, proprio + 1)[1])
    assert np.all(chunk[:, 2] < 0)  # it descends
    custom = FakeVla(cameras=("front",), image_size=32)
    assert custom.cameras == ("front",) and custom.image_size == 32 and custom.provider == "fake"
    with pytest.raises(TypeError, match="unknown VlaSpec field"):
        FakeVla(image_sise=32)


def test_resolve_providers():
    assert resolve_providers("auto", [CPU]) == [CPU]
    assert resolve_providers("auto", [CUDA, CPU]) == [CUDA, CPU]
    assert resolve_providers("cpu", [CUDA, CPU]) == [CPU]
    with pytest.raises(ValueError, match="onnxruntime-gpu"):
        resolve_providers("cuda", [CPU])
    with pytest.raises(ValueError, match="expected auto, cpu, cuda"):
        resolve_providers("gpu", [CPU])


def test_bench_reports_latency_and_the_torch_ratio(exported, tiny_checkpoints):
    result = bench_vla(exported.path, *tiny_checkpoints, iterations=5, warmup=1)
    assert {"onnx_cpu", "torch_cpu"} <= set(result["runtimes"])
    assert result["runtimes"]["onnx_cpu"]["p99_ms"] >= result["runtimes"]["onnx_cpu"]["p50_ms"] > 0
    assert result["torch_over_onnx_cpu"] > 0
    assert "PyTorch / ONNX Runtime" in format_report(result)


def test_goal_perception_reads_the_leading_token_entries_in_goal_units():
    from types import SimpleNamespace

    from rlt.app.evaluate import goal_perception

    vla = FakeVla(seed=1)
    images, proprio = _observation(vla.spec)
    perceive = goal_perception(vla, (0.002, 0.002, 0.02))
    estimate = perceive(SimpleNamespace(images=images, proprio=proprio))
    z = vla.infer(images, proprio)[1]
    np.testing.assert_allclose(estimate, z[:3] * np.array([0.002, 0.002, 0.02]), rtol=1e-6)
    assert estimate.shape == (3,)


def test_an_export_that_fails_its_check_leaves_the_served_model_in_place(tiny_checkpoints, tmp_path):
    served = tmp_path / "vla.onnx"
    served.write_bytes(b"the model being served")
    with pytest.raises(AssertionError, match="ONNX Runtime and PyTorch differ"):
        export_onnx(*tiny_checkpoints, served, tolerance=-1.0)  # no difference passes a negative tolerance
    assert served.read_bytes() == b"the model being served" and not list(tmp_path.glob(".*.tmp"))
