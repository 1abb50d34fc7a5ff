"""The RL token: shapes, causal decoder, context dropout, stop-gradient into the VLA, training and the probe."""

import numpy as np
import pytest
import torch

from rlt.models.bc import train_vla
from rlt.models.probes import ridge_probe_r2
from rlt.models.rl_token import RlToken, diagnose_token, load_token, prefix_embeddings, train_token
from rlt.models.testing import synthetic_episodes, tiny_token_config, tiny_train_config, tiny_vla_config
from rlt.models.vla import Vla

M, D = 9, 16  # prefix tokens and width of the tiny VLA


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    torch.set_num_threads(1)


def _token(**changes) -> RlToken:
    return RlToken(tiny_token_config(**changes), D, M).eval()


@pytest.mark.parametrize("slots", [1, 3])
def test_shapes(slots):
    token = _token(slots=slots)
    prefix = torch.randn(3, M, D)
    z = token.encode(prefix)
    assert z.shape == (3, 8)
    assert token.decode(z, prefix).shape == (3, M, D)
    assert token.loss(prefix).ndim == 0


def test_rl_token_is_read_at_the_appended_last_position():
    token = _token()
    prefix = torch.randn(2, M, D)
    z = token.encode(prefix)
    with torch.no_grad():
        token.e_rl.add_(1.0)
    assert not torch.allclose(z, token.encode(prefix))


@pytest.mark.parametrize("slots", [1, 3])
def test_decoder_is_causal(slots):
    token = _token(slots=slots)
    prefix, z = torch.randn(2, M, D), torch.randn(2, 8)
    out = token.decode(z, prefix)
    j = 4
    changed = prefix.clone()
    changed[:, j] += 1.0  # z̄_j is the input at position j + 1: predictions 0..j must not change
    out2 = token.decode(z, changed)
    torch.testing.assert_close(out[:, : j + 1], out2[:, : j + 1])
    assert not torch.allclose(out[:, j + 1 :], out2[:, j + 1 :])


def test_context_dropout_zeroes_teacher_forced_inputs():
    token = _token()
    prefix, z = torch.randn(4, M, D), torch.randn(4, 8)
    # p = 1: every teacher-forced input is zeroed, so the targets cannot leak into the reconstruction
    a = token.decode(z, prefix, context_dropout=1.0)
    b = token.decode(z, torch.randn(4, M, D), context_dropout=1.0)
    torch.testing.assert_close(a, b)
    # p = 0.9: about 90 % of the inputs are dropped, reproducibly for a given generator
    seen = []
    token.decoder_in.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0]))
    token.decode(z.repeat(100, 1), prefix.repeat(100, 1, 1), 0.9,
                 torch.Generator().manual_seed(0))
    kept = (seen[-1].abs().sum(-1) > 0).float().mean().item()
    assert 0.05 < kept < 0.15
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    torch.testing.assert_close(token.decode(z, prefix, 0.9, g1), token.decode(z, prefix, 0.9, g2))


def test_training_mode_uses_the_configured_context_dropout():
    token = _token(context_dropout=1.0)
    prefix = torch.randn(2, M, D)
    z = token.encode(prefix)
    token.train()
    with torch.no_grad():
        train_loss = token.loss(prefix, z)
        assert train_loss == token.loss(prefix, z, context_dropout=1.0)
    token.eval()
    assert token.loss(prefix, z) == token.loss(prefix, z, context_dropout=0.0)


def test_stop_gradient_into_the_vla():
    cfg = tiny_vla_config()
    vla = Vla(cfg)  # trainable on purpose: the token loss alone must not reach it
    token = RlToken(tiny_token_config(), cfg.d_model, cfg.prefix_len).train()
    images = torch.randint(0, 256, (2, 2, 16, 16, 3), dtype=torch.uint8)
    _, prefix = vla(images, torch.randn(2, cfg.proprio_dim))  # with graph: loss() must detach it
    token.loss(prefix).backward()
    assert all(p.grad is None for p in vla.parameters())
    assert all(p.grad is not None for p in token.parameters())
    assert not prefix_embeddings(vla, images, torch.randn(2, cfg.proprio_dim)).requires_grad


def test_ridge_probe_r2():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6))
    y = np.stack([x @ rng.normal(size=6), rng.normal(size=400)], axis=1)
    r2 = ridge_probe_r2(x[:300], y[:300], x[300:], y[300:], ridge=1e-3)
    assert r2[0] > 0.999 and r2[1] < 0.1


def test_train_token_and_diagnose(tmp_path, capsys):
    cfg = tiny_vla_config()
    episodes = synthetic_episodes(cfg, episodes=6)
    vla_ckpt = train_vla(episodes, tmp_path / "vla", cfg, tiny_train_config(holdout_fraction=0.4), progress=False)
    ckpt = train_token(vla_ckpt, episodes, tmp_path / "token", tiny_token_config(), progress=False)
    token = load_token(ckpt)
    assert token.cfg.token_dim == 8 and not any(p.requires_grad for p in token.parameters())
    report = diagnose_token(ckpt, demos=episodes)
    assert {"loss_real", "loss_zero", "loss_shuffled", "probe_r2_x", "probe_proprio_r2_yaw"} <= set(report)
    assert report["held_out_frames"] == 2 * 12
    assert {"goal_rmse_0", "goal_near_rmse_3"} <= set(report) and np.isfinite(report["goal_rmse_1"])
    out = capsys.readouterr().out
    assert "shuffled z_rl" in out and "goal entries" in out
    plain_cfg = tiny_token_config(goal_weight=0.0, rl_entries=0)
    plain = train_token(vla_ckpt, episodes, tmp_path / "plain", plain_cfg, progress=False)
    assert not any(k.startswith("goal") for k in diagnose_token(plain, demos=episodes, verbose=False))
    with pytest.raises(ValueError, match="pass `demos`"):
        diagnose_token(ckpt)  # trained on in-memory episodes: no path to reload
    with pytest.raises(ValueError, match="use the same demonstrations"):
        diagnose_token(ckpt, demos=episodes[:4], verbose=False)


def test_linear_path_starts_at_the_principal_subspace():
    # prefixes that vary along 3 hidden directions (plus a little noise): the first 3 outputs of the linear path
    # must recover them linearly and carry nearly all the variance (mean variance over the Z outputs = 1)
    gen = torch.Generator().manual_seed(1)
    latent = torch.randn(400, 3, generator=gen) * torch.tensor([3.0, 2.0, 1.0])
    basis = torch.randn(3, M * D, generator=gen)
    prefix = (latent @ basis + 0.01 * torch.randn(400, M * D, generator=gen)).view(400, M, D)
    token = _token(token_dim=8)
    token.set_embedding_stats(prefix)
    token.init_linear_path(prefix)
    out = token.linear(token.standardize(prefix).flatten(1)).detach()  # float32[N, Z]
    var = out.var(0)
    assert var.mean().item() == pytest.approx(1.0, rel=0.01)
    assert var[:3].sum() > 0.999 * var.sum()
    r2 = ridge_probe_r2(out[:, :3].numpy(), latent.numpy(), out[:, :3].numpy(), latent.numpy(), 1e-6)
    assert r2.min() > 0.999


def test_goal_entries_start_at_the_ridge_estimate_of_the_goal():
    # the goal is a linear function of the hidden directions; frames of failed episodes (NaN) are left out of the
    # fit; the other Z - G outputs are the principal directions, as without a goal
    gen = torch.Generator().manual_seed(2)
    latent = torch.randn(400, 3, generator=gen)
    prefix = (latent @ torch.randn(3, M * D, generator=gen)).view(400, M, D)
    goal = latent[:, :2] @ torch.tensor([[1.0, 0.5], [-0.5, 2.0]]) + torch.tensor([0.3, -0.2])  # float32[N, 2]
    goal[::7] = float("nan")
    token = _token(token_dim=8, goal_axes=(0, 1), goal_scale=(0.5, 0.5))
    assert token.goal_dims == 2
    token.set_embedding_stats(prefix)
    token.init_linear_path(prefix, goal)
    with torch.no_grad():
        token.to_token.weight.zero_()  # the readout's bias carries the goal's intercept
    z = token.encode(prefix)
    known = ~goal.isnan().any(1)
    torch.testing.assert_close(z[known, :2], goal[known], atol=0.02, rtol=0.0)
    torch.testing.assert_close(token.goal(z)[known], 0.5 * goal[known], atol=0.01, rtol=0.0)
    rest = token.linear(token.standardize(prefix).flatten(1))[:, 2:].detach()
    assert rest.var(0).mean().item() == pytest.approx(1.0, rel=0.01)


def test_goal_targets_are_the_displacement_to_the_final_pose():
    token = _token(goal_axes=(0, 3), goal_scale=(0.002, 0.02))
    proprio = torch.tensor([[0.010, 9.0, 9.0, 0.10], [0.004, 9.0, 9.0, 0.04]])
    final = torch.tensor([0.002, 0.0, 0.0, 0.02]).expand(2, -1)
    torch.testing.assert_close(token.goal_targets(proprio, final), torch.tensor([[4.0, 4.0], [1.0, 1.0]]))
    assert _token(goal_weight=0.0, rl_entries=0).goal_dims == 0


@pytest.mark.parametrize(("changes", "field"), [({"goal_axes": tuple(range(8))}, "goal_axes"),
                                                ({"goal_scale": (1.0,)}, "goal_scale"),
                                                ({"goal_scale": (1.0, 0.0, 1.0)}, "goal_scale"),
                                                ({"goal_weight": 0.0}, "rl_entries"),
                                                ({"rl_entries": 9}, "rl_entries")])
def test_goal_config_errors_name_the_field(changes, field):
    with pytest.raises(ValueError, match=field):
        tiny_token_config(**changes)


def test_rl_state_is_the_leading_entries_of_z_rl():
    prefix = torch.randn(2, M, D)
    token = _token()
    assert token.state_dim == 3
    torch.testing.assert_close(token.rl_state(prefix), token.encode(prefix)[:, :3])
    assert _token(rl_entries=0).rl_state(prefix).shape == (2, 8)


def test_without_linear_path_z_rl_is_the_readout_alone():
    token = _token(linear_path=False)
    assert token.linear is None
    prefix = torch.randn(2, M, D)
    token.init_linear_path(prefix)  # a no-op
    z = token.encode(prefix)
    with torch.no_grad():
        token.to_token.weight.zero_()
        token.to_token.bias.zero_()
    assert torch.count_nonzero(token.encode(prefix)) == 0 and torch.count_nonzero(z) > 0


def test_ridge_probe_reports_the_mean_absolute_error_in_target_units():
    from rlt.models.probes import ridge_probe

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    y = x[:, :2] * [0.001, 0.002] + rng.normal(0.0, 0.0001, (400, 2))  # m: a known map plus 0.1 mm noise
    r2, mae = ridge_probe(x[:300], y[:300], x[300:], y[300:], ridge=1e-3)
    assert np.all(r2 > 0.97) and np.allclose(mae, 0.0001 * np.sqrt(2 / np.pi), rtol=0.25)  # E|N(0, s)| = s sqrt(2/pi)
