"""The VLA: configs, tokenizer, shapes, attention structure, normalization, data flattening, BC training and resume."""

import numpy as np
import pytest
import torch

from rlt.config import ConfigError
from rlt.models.bc import axis_weights, bc_loss, train_vla
from rlt.models.checkpoint import load_checkpoint
from rlt.models.config import TokenConfig, VlaConfig, VlaTrainConfig
from rlt.models.data import Frames, frames_from_episodes, random_shift, split_episodes
from rlt.models.testing import synthetic_episodes, tiny_train_config, tiny_vla_config
from rlt.models.vla import Vla, load_vla, save_vla, tokenize_instruction


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    torch.set_num_threads(1)


def _inputs(cfg: VlaConfig, batch: int = 3):
    images = torch.randint(0, 256, (batch, len(cfg.cameras), cfg.image_size, cfg.image_size, 3), dtype=torch.uint8)
    return images, torch.randn(batch, cfg.proprio_dim)


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"patch_size": 7}, "patch_size"), ({"heads": 3}, "heads"), ({"cameras": ()}, "cameras"),
     ({"action_names": ("dx",)}, "action_names"), ({"cameras": ("front", "front")}, "cameras"),
     ({"stem_stride": 3}, "stem_stride"), ({"instruction": "  "}, "instruction")],
)
def test_vla_config_errors_name_the_field(changes, field):
    with pytest.raises(ConfigError, match=rf"VlaConfig\.{field}="):
        VlaConfig(**changes)


def test_train_and_token_config_validation():
    with pytest.raises(ConfigError, match=r"VlaTrainConfig\.holdout_fraction="):
        VlaTrainConfig(holdout_fraction=0.95)
    with pytest.raises(ConfigError, match=r"TokenConfig\.context_dropout="):
        TokenConfig(context_dropout=1.5)


def test_tokenizer_is_deterministic_and_in_range():
    ids = tokenize_instruction("Insert the peg, into the socket!", 64, 12)
    assert ids == tokenize_instruction("insert the peg into the socket", 64, 12)
    assert len(ids) == 6 and ids[1] == ids[4]  # "the" twice
    assert all(1 <= i < 64 for i in ids)
    assert len(tokenize_instruction("a b c d", 64, 2)) == 2
    with pytest.raises(ValueError, match="no words"):
        tokenize_instruction("!!", 64, 2)


def test_forward_shapes():
    cfg = tiny_vla_config()
    chunk, prefix = Vla(cfg)(*_inputs(cfg))
    assert chunk.shape == (3, cfg.chunk_len, cfg.action_dim)
    assert prefix.shape == (3, cfg.prefix_len, cfg.d_model)
    assert cfg.prefix_len == 2 * 4 + 1


def test_prefix_is_what_the_last_block_reads_and_independent_of_the_readout():
    cfg = tiny_vla_config(layers=2)
    model = Vla(cfg).eval()
    inputs = _inputs(cfg)
    chunk, prefix = model(*inputs)
    with torch.no_grad():
        model.act_query.add_(1.0)
        model.backbone.blocks[-1].mlp[-1].weight.add_(1.0)  # the last block's outputs at the prefix: not exposed
    chunk2, prefix2 = model(*inputs)
    torch.testing.assert_close(prefix, prefix2)
    assert not torch.allclose(chunk, chunk2)
    with torch.no_grad():
        model.backbone.blocks[0].mlp[-1].weight.add_(1.0)  # earlier blocks shape it
    assert not torch.allclose(prefix, model(*inputs)[1])


def test_proprio_is_normalized_inside_the_model():
    cfg = tiny_vla_config()
    model = Vla(cfg).eval()
    images, proprio = _inputs(cfg)
    mean, std = np.full(cfg.proprio_dim, 5.0), np.full(cfg.proprio_dim, 2.0)
    before = model(images, proprio)[0]
    model.set_proprio_stats(mean, std)
    after = model(images, proprio * 2.0 + 5.0)[0]
    torch.testing.assert_close(before, after)
    model.set_proprio_stats(mean, np.zeros(cfg.proprio_dim))  # constant entries do not divide by zero
    assert torch.isfinite(model(images, proprio)[0]).all()


def test_physical_units_round_trip():
    model = Vla(tiny_vla_config())
    chunk = torch.tensor([[[0.002, -0.004, 0.001, 0.05]]])
    torch.testing.assert_close(model.to_normalized(chunk), torch.tensor([[[0.5, -1.0, 0.25, 1.0]]]))
    torch.testing.assert_close(model.to_physical(model.to_normalized(chunk)), chunk)


def test_save_load_round_trip(tmp_path):
    cfg = tiny_vla_config()
    model = Vla(cfg).eval()
    model.set_proprio_stats(np.arange(cfg.proprio_dim), np.ones(cfg.proprio_dim))
    save_vla(tmp_path / "v.pt", model)
    loaded = load_vla(tmp_path / "v.pt")
    inputs = _inputs(cfg)
    torch.testing.assert_close(model(*inputs)[0], loaded(*inputs)[0])
    assert not any(p.requires_grad for p in loaded.parameters())
    with pytest.raises(ValueError, match=r"not a rlt\.token checkpoint"):
        load_checkpoint(tmp_path / "v.pt", "rlt.token")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_vla(tmp_path / "missing.pt")


def test_frames_targets_are_the_next_h_labels_masked_past_the_end():
    cfg = tiny_vla_config(chunk_len=4)
    episodes = synthetic_episodes(cfg, episodes=2, steps=5)
    frames = frames_from_episodes(episodes, cfg.cameras, cfg.chunk_len)
    assert len(frames) == 10 and frames.images.shape == (10, 2, 16, 16, 3)
    np.testing.assert_array_equal(frames.chunks[1], episodes[0].actions[1:5])
    np.testing.assert_array_equal(frames.chunk_mask[3], [True, True, False, False])
    np.testing.assert_array_equal(frames.chunks[3, 2:], 0.0)
    np.testing.assert_array_equal(frames.images[7, 1], episodes[1].images["wrist"][2])
    assert frames.of_episodes([1]).episode.tolist() == [1] * 5
    with pytest.raises(ValueError, match="no camera"):
        frames_from_episodes(episodes, ("top",), 4)


def test_concatenated_frames_keep_their_episodes_apart():
    cfg = tiny_vla_config()
    episodes = synthetic_episodes(cfg, episodes=3)
    a = frames_from_episodes(episodes[:2], cfg.cameras, cfg.chunk_len)
    b = frames_from_episodes(episodes[2:], cfg.cameras, cfg.chunk_len)
    both = Frames.concat([a.of_episodes([1]), b])
    assert len(both) == len(a.of_episodes([1])) + len(b)
    assert sorted(set(both.episode.tolist())) == [1, 2]  # b's episode 0 does not merge with a's episodes
    whole = frames_from_episodes(episodes, cfg.cameras, cfg.chunk_len)
    np.testing.assert_array_equal(Frames.concat([a, b]).final_proprio, whole.final_proprio)
    np.testing.assert_array_equal(Frames.concat([a, b]).episode, whole.episode)


def test_bc_loss_ignores_padded_steps():
    cfg = tiny_vla_config(chunk_len=4)
    model = Vla(cfg)
    images, proprio = _inputs(cfg, 2)
    pred = model.to_physical(model(images, proprio)[0]).detach()
    mask = torch.tensor([[True, True, False, False]] * 2)
    garbage = pred.clone()
    garbage[:, 2:] = 1.0  # beyond the episode end: must not count
    assert bc_loss(model, images, proprio, garbage, mask).item() == pytest.approx(0.0, abs=1e-6)


def test_split_is_seeded_and_disjoint():
    train, held = split_episodes(10, 0.2, seed=3)
    assert len(held) == 2 and not set(train) & set(held) and len(train) + len(held) == 10
    assert (train.tolist(), held.tolist()) == tuple(a.tolist() for a in split_episodes(10, 0.2, seed=3))
    assert len(split_episodes(2, 0.01, 0)[1]) == 1  # at least one held-out episode


def test_random_shift_moves_content_within_bounds():
    g = torch.Generator().manual_seed(0)
    images = torch.zeros(4, 1, 8, 8, 3, dtype=torch.uint8)
    images[:, :, 4, 4] = 255
    shifted = random_shift(images, 2, g)
    assert shifted.shape == images.shape and shifted.dtype == torch.uint8
    for b in range(4):
        rows, cols = np.nonzero(shifted[b, 0, :, :, 0].numpy())
        assert len(rows) == 1 and abs(rows[0] - 4) <= 2 and abs(cols[0] - 4) <= 2
    assert random_shift(images, 0, g) is images


def test_train_vla_resume_matches_an_uninterrupted_run(tmp_path):
    cfg = tiny_vla_config()
    episodes = synthetic_episodes(cfg)
    full = train_vla(episodes, tmp_path / "full", cfg, tiny_train_config(steps=4), progress=False)
    train_vla(episodes, tmp_path / "part", cfg, tiny_train_config(steps=2), progress=False)
    part = train_vla(episodes, tmp_path / "part", cfg, tiny_train_config(steps=4), resume=True, progress=False)
    a, b = load_checkpoint(full, "rlt.vla"), load_checkpoint(part, "rlt.vla")
    assert a["step"] == b["step"] == 4
    for name, tensor in a["model"].items():
        torch.testing.assert_close(tensor, b["model"][name], msg=name)
    assert a["split"]["n_episodes"] == 3  # successes only: episode 1 of the synthetic set failed
    with pytest.raises(ValueError, match=r"VlaTrainConfig differs in lr"):
        train_vla(episodes, tmp_path / "part", cfg, tiny_train_config(steps=4, lr=1e-2), resume=True,
                  progress=False)
    # a build stopped before its first checkpoint (only the artifact key was written) starts over
    fresh = train_vla(episodes, tmp_path / "empty", cfg, tiny_train_config(steps=4), resume=True, progress=False)
    assert load_checkpoint(fresh, "rlt.vla")["step"] == 4


def test_train_vla_rejects_mismatched_demos(tmp_path):
    cfg = tiny_vla_config()
    with pytest.raises(ValueError, match=r"VlaConfig.image_size=32"):
        train_vla(synthetic_episodes(cfg), tmp_path, tiny_vla_config(image_size=32, patch_size=8),
                  tiny_train_config(), progress=False)


def test_cumulative_loss_weights_early_errors_by_the_steps_they_displace():
    cfg = tiny_vla_config(chunk_len=4)
    model = Vla(cfg)
    images, proprio = _inputs(cfg, 1)
    pred = model.to_physical(model(images, proprio)[0]).detach()
    mask = torch.ones(1, 4, dtype=torch.bool)
    early, late = pred.clone(), pred.clone()
    early[0, 0, 0] += 0.004  # one normalized unit on dx, first step
    late[0, 3, 0] += 0.004  # ... last step
    per_step = [bc_loss(model, images, proprio, c, mask, "l1").item() for c in (early, late)]
    cumulative = [bc_loss(model, images, proprio, c, mask, "l1", cumulative=True).item() for c in (early, late)]
    assert per_step[0] == pytest.approx(per_step[1], rel=1e-4)
    assert cumulative[0] == pytest.approx(4 * cumulative[1], rel=1e-4)


def test_axis_weights_equalize_label_spread():
    cfg = tiny_vla_config(chunk_len=4)
    frames = frames_from_episodes(synthetic_episodes(cfg), cfg.cameras, cfg.chunk_len)
    frames.chunks[..., 2] = np.where(frames.chunk_mask, 0.002 * np.sign(np.arange(4) - 1.5), 0.0)
    weights = axis_weights(frames, cfg.action_scale)
    assert axis_weights(frames, cfg.action_scale, "l2", cumulative=True)[2] < weights[2]
    assert weights.shape == (4,) and weights.mean().item() == pytest.approx(1.0)
    assert weights[2] < weights[0]  # dz varies most (normalized), so it weighs least
    assert weights[3] == weights.max()  # dyaw never varies: floor on its std
