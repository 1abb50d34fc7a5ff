"""The "no RL token" ablation: the image-feature CNN, its training, its export in z_rl's place, the session wiring."""

import numpy as np
import pytest
import torch

from rlt.config import ConfigError
from rlt.models.bc import train_vla
from rlt.models.checkpoint import checkpoint_kind
from rlt.models.config import ImageFeaturesConfig
from rlt.models.export import ExportedVla, export_onnx, load_encoder
from rlt.models.image_features import (
    CHECKPOINT_KIND,
    ImageFeatures,
    diagnose_image_features,
    load_image_features,
    train_image_features,
)
from rlt.models.onnx_vla import OnnxVla, read_spec
from rlt.models.testing import synthetic_episodes, tiny_image_features_config, tiny_train_config, tiny_vla_config
from rlt.models.vla import load_vla

CAMERAS = ("front", "wrist")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny VLA and image-feature encoder trained on synthetic episodes (4 + 20 steps)."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("image_features")
    cfg = tiny_vla_config()
    episodes = synthetic_episodes(cfg, episodes=6)
    vla = train_vla(episodes, root / "vla", cfg, tiny_train_config(holdout_fraction=0.4), progress=False)
    features = train_image_features(vla, episodes, root / "features",
                                    tiny_image_features_config(steps=20), progress=False)
    return vla, features, episodes


def test_shapes_and_standardization():
    model = ImageFeatures(tiny_image_features_config(), CAMERAS, 16).eval()
    images = torch.randint(0, 256, (3, 2, 16, 16, 3), dtype=torch.uint8)
    pixels = model.pixels(images)
    assert pixels.shape == (6, 3, 16, 16) and pixels.min() >= -0.5 and pixels.max() <= 0.5
    assert model.codes(pixels).shape == (6, 4)  # Z / K per camera
    assert model.decode(model.codes(pixels)).shape == model.target(pixels).shape == (6, 3, 8, 8)
    raw = model.raw_features(images)
    assert raw.shape == (3, 8) and model.loss(images).ndim == 0
    torch.testing.assert_close(raw[:, 4:], model.codes(pixels)[1::2])  # camera order: front's codes, then wrist's
    model.set_feature_stats(raw)
    z = model.encode(images)
    torch.testing.assert_close(z.mean(0), torch.zeros(8), atol=1e-5, rtol=0)
    assert z.pow(2).mean().item() == pytest.approx(1.0, rel=1e-4)


def test_features_depend_on_the_images_only_per_camera():
    model = ImageFeatures(tiny_image_features_config(), CAMERAS, 16).eval()
    images = torch.randint(0, 256, (2, 2, 16, 16, 3), dtype=torch.uint8)
    changed = images.clone()
    changed[:, 1] = 255 - changed[:, 1]  # only the wrist image changes
    a, b = model.encode(images), model.encode(changed)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_config_and_size_errors_name_the_fields():
    with pytest.raises(ConfigError, match=r"recon_size=18: must be a multiple of 2\^len\(channels\)=4"):
        ImageFeaturesConfig(channels=(8, 8), recon_size=18)
    with pytest.raises(ConfigError, match="channels"):
        ImageFeaturesConfig(channels=())
    with pytest.raises(ValueError, match=r"feature_dim=9 must be a multiple of the VLA's 2 cameras"):
        ImageFeatures(tiny_image_features_config(feature_dim=9), CAMERAS, 16)
    with pytest.raises(ValueError, match=r"recon_size=32 must be <= VlaConfig.image_size=16"):
        ImageFeatures(tiny_image_features_config(recon_size=32), CAMERAS, 16)


def test_training_reduces_the_reconstruction_loss():
    cfg = tiny_vla_config()
    episodes = synthetic_episodes(cfg, episodes=2)
    frames = [np.stack([ep.images[c] for c in cfg.cameras], 1) for ep in episodes]  # uint8[T, K, S, S, 3] each
    images = torch.from_numpy(np.concatenate(frames))
    model = ImageFeatures(tiny_image_features_config(channels=(8, 16)), cfg.cameras, cfg.image_size)
    with torch.no_grad():
        before = model.loss(images).item()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        optimizer.zero_grad()
        model.loss(images).backward()
        optimizer.step()
    with torch.no_grad():
        after = model.loss(images).item()
        pixels = model.pixels(images)
        others = model.codes(pixels).roll(len(pixels) // 2, dims=0)  # another frame's code, same camera
        shuffled = ((model.decode(others) - model.target(pixels)) ** 2).mean().item()
    assert after < 0.1 * before
    assert after < 0.5 * shuffled  # the code carries the frame, not only the mean image


def test_train_checkpoint_and_diagnose(trained, capsys):
    vla, checkpoint, episodes = trained
    assert checkpoint.name == "image_features.pt" and checkpoint_kind(checkpoint) == CHECKPOINT_KIND
    model = load_image_features(checkpoint)
    assert model.cfg.feature_dim == 8 and model.cameras == CAMERAS and model.image_size == 16
    assert not any(p.requires_grad for p in model.parameters())
    assert model.feature_scale.item() != 1.0  # the final checkpoint holds the standardization
    assert isinstance(load_encoder(checkpoint), ImageFeatures)
    report = diagnose_image_features(checkpoint, demos=episodes)
    assert report["held_out_frames"] == 2 * 12 and np.isfinite(report["loss_real"])
    assert {"loss_shuffled", "probe_r2_x", "probe_proprio_r2_yaw"} <= set(report)
    assert "shuffled features" in capsys.readouterr().out
    with pytest.raises(ValueError, match="pass `demos`"):
        diagnose_image_features(checkpoint)  # trained on in-memory episodes: no path to reload
    with pytest.raises(ValueError, match="use the same demonstrations"):
        train_image_features(vla, episodes[:4], checkpoint.parent, tiny_image_features_config(), progress=False)
    with pytest.raises(ValueError, match="neither an RL-token"):
        load_encoder(vla)


def test_export_puts_the_image_features_in_z_rl_place(trained, tmp_path):
    vla_ckpt, checkpoint, _ = trained
    report = export_onnx(vla_ckpt, checkpoint, tmp_path / "vla_cnn.onnx")
    assert report.spec.token_dim == 8 and report.max_abs_diff_rl_token < 1e-4
    runtime = OnnxVla(report.path, providers="cpu")
    vla, features = load_vla(vla_ckpt), load_image_features(checkpoint)
    model = ExportedVla(vla, features).eval()
    rng = np.random.default_rng(3)
    images = {c: rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for c in CAMERAS}
    proprio = rng.normal(0, 0.01, 12).astype(np.float32)
    inputs = [torch.from_numpy(images[c][None]) for c in CAMERAS]
    with torch.no_grad():
        chunk, z = model(*inputs, torch.from_numpy(proprio[None]))  # the contract module's outputs
        expected_z = features.encode(torch.stack(inputs, 1))  # the CNN features, not an RL token
        expected_chunk = vla.to_physical(vla(torch.stack(inputs, 1), torch.from_numpy(proprio[None]))[0])
    got_chunk, got_z = runtime.infer(images, proprio)
    np.testing.assert_allclose(got_z, z[0].numpy(), atol=1e-4)
    np.testing.assert_allclose(got_z, expected_z[0].numpy(), atol=1e-4)
    np.testing.assert_allclose(got_chunk, chunk[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(got_chunk, expected_chunk[0].numpy(), atol=1e-6)  # the same VLA reference chunk
    with pytest.raises(ValueError, match="expect cameras front, wrist at 32 px; the VLA has front, wrist at 16 px"):
        ExportedVla(load_vla(vla_ckpt), ImageFeatures(tiny_image_features_config(), CAMERAS, 32))


def test_session_ablation_uses_the_image_feature_onnx(trained, tmp_path, monkeypatch):
    """`--ablation no_token` builds artifacts/image_features + vla_cnn.onnx (cached) and never the RL token."""
    import shutil

    from rlt.app.session import ABLATIONS, IMAGE_FEATURE_ABLATIONS, SessionConfig, SimSession
    from rlt.models import image_features

    assert set(ABLATIONS) >= IMAGE_FEATURE_ABLATIONS
    vla_ckpt, _, episodes = trained
    art = tmp_path / "artifacts"
    from rlt.app import recipe
    from rlt.models import bc

    # the demos and the VLA stand in for the recorded and trained ones; the ablation's own artifacts are real
    monkeypatch.setattr(recipe, "record_vla_demos", lambda out, *args, **kwargs: out)
    monkeypatch.setattr(bc, "train_vla", lambda demos, out, *args, **kwargs: shutil.copy(vla_ckpt, out / "vla.pt"))
    calls = []
    real_train = image_features.train_image_features

    def train_on_synthetic(vla, demos, out_dir, cfg, progress):
        calls.append(demos)
        return real_train(vla, episodes, out_dir, cfg, progress=progress)

    monkeypatch.setattr(image_features, "train_image_features", train_on_synthetic)
    cfg = SessionConfig(out_dir=str(tmp_path / "run"), artifacts_dir=str(art), ablation="no_token",
                        train_mode="critical", tiny=True)
    session = SimSession(cfg, progress=False)
    onnx = session.build_artifacts()
    assert onnx == art.resolve() / "vla_cnn.onnx" and (art / "image_features" / "image_features.pt").is_file()
    assert not (art / "token").exists() and not (art / "vla.onnx").exists()
    assert calls == [art.resolve() / "demos" / "main"]
    assert read_spec(onnx).token_dim == 8  # the CNN's feature_dim: what the actor and learner size themselves on
    assert session.build_artifacts() == onnx and len(calls) == 1  # cached
