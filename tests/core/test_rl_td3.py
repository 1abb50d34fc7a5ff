"""TD3 loss terms on literal arrays, the hand-written update against a plain autograd implementation, acting."""

from __future__ import annotations

import pytest
import torch

from rlt.config import ConfigError
from rlt.rl.config import RLConfig
from rlt.rl.networks import Actor, TwinCritic
from rlt.rl.replay import Batch, RowLayout
from rlt.rl.td3 import (
    TD3,
    actor_loss,
    apply_reference_dropout,
    bc_term,
    bc_weight_rows,
    critic_loss,
    discounts,
    reference_keep_mask,
    td_target,
)


def t(values: object) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


# ---------------------------------------------------------------------- literal values
def test_discounts():
    assert torch.equal(discounts(3, 0.5), t([1.0, 0.5, 0.25]))


def test_td_target_sums_discounted_rewards_and_bootstraps_unless_done():
    rewards = t([[0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])  # C = 3
    done = t([1.0, 0.0])
    q_next = t([10.0, 2.0])
    y = td_target(rewards, done, q_next, gamma=0.5)
    # row 0: 0.25 * 1 (terminal, no bootstrap); row 1: 1 + 0.5 + 0.25 + 0.5**3 * 2
    assert torch.allclose(y, t([0.25, 2.0]))


def test_reference_dropout_zeroes_whole_transitions_only():
    ref = t([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]])  # [B=2, C=2, D=2]
    keep = t([[0.0], [1.0]])
    dropped = apply_reference_dropout(ref, keep)
    assert torch.equal(dropped, t([[[0.0, 0.0], [0.0, 0.0]], [[5.0, 6.0], [7.0, 8.0]]]))
    assert torch.equal(apply_reference_dropout(ref.flatten(1), keep), dropped.flatten(1))


def test_reference_keep_mask_rate_and_extremes():
    gen = torch.Generator().manual_seed(0)
    keep = reference_keep_mask(20_000, 0.5, gen)
    assert keep.shape == (20_000, 1) and set(keep.unique().tolist()) == {0.0, 1.0}
    assert keep.mean().item() == pytest.approx(0.5, abs=0.02)
    assert reference_keep_mask(8, 0.0, gen).min() == 1.0
    assert reference_keep_mask(8, 1.0, gen).max() == 0.0


def test_bc_term_sums_over_chunk_and_averages_over_batch():
    mu = t([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    ref = t([[0.0, 0.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    # row 0: 1 + 4 = 5; row 1: 0 -> mean 2.5, times beta
    assert bc_term(mu, ref, beta=2.0).item() == pytest.approx(5.0)
    assert bc_term(mu.view(2, 2, 2), ref.view(2, 2, 2), beta=1.0).item() == pytest.approx(2.5)
    # one weight per flattened dim: row 0 = 0.5 * 1 + 3 * 4 = 12.5 -> mean 6.25
    assert bc_term(mu, ref, beta=t([0.5, 1.0, 1.0, 3.0])).item() == pytest.approx(6.25)


def test_human_chunks_keep_beta_on_every_axis():
    weights = torch.tensor([2.0, 0.2, 2.0, 0.2])  # β 2, beta_axes (1, 0.1), C 2
    rows = bc_weight_rows(weights, 2.0, torch.tensor([0.0, 1.0]))
    assert torch.equal(rows, torch.tensor([[2.0, 0.2, 2.0, 0.2], [2.0, 2.0, 2.0, 2.0]]))


def test_bc_weights_repeat_beta_axes_over_the_chunk():
    cfg = RLConfig(token_dim=4, proprio_dim=0, chunk_len=2, action_dim=2, action_scale=(1.0, 1.0), stride=1,
                   beta=2.0, beta_axes=(1.0, 0.1))
    assert cfg.bc_weights == pytest.approx((2.0, 0.2, 2.0, 0.2))
    assert cfg.replace(beta_axes=()).bc_weights == (2.0,) * 4
    with pytest.raises(ConfigError, match=r"RLConfig\.beta_axes.*one weight per action dim \(2\)"):
        cfg.replace(beta_axes=(1.0, 1.0, 1.0))
    with pytest.raises(ConfigError, match=r"RLConfig\.beta_axes.*>= 0"):
        cfg.replace(beta_axes=(1.0, -0.1))


def test_critic_and_actor_losses():
    q = t([[1.0, 3.0], [2.0, 2.0]])  # Q1, Q2 over B = 2
    y = t([2.0, 2.0])
    assert critic_loss(q, y).item() == pytest.approx((1 + 1) / 2 + 0.0)
    mu, ref = t([[0.5], [0.0]]), t([[0.0], [0.0]])
    assert actor_loss(t([1.0, 3.0]), mu, ref, beta=4.0).item() == pytest.approx(-2.0 + 4.0 * 0.25 / 2)


# ---------------------------------------------------------------------- networks
def test_networks_shapes_and_bounds():
    actor = Actor(5, 3, 2, (16, 16))
    critic = TwinCritic(5, 3, 2, (16, 16))
    x, ref = torch.randn(4, 5), torch.rand(4, 3, 2) * 2 - 1
    mu = actor(x, ref)
    assert mu.shape == (4, 3, 2) and mu.abs().max() <= 1
    assert critic(x, mu).shape == (2, 4)
    assert actor.shapes()["w0"] == (1, 16, 5 + 6)
    assert Actor(5, 3, 2, (16,), use_reference=False).shapes()["w0"] == (1, 16, 5)
    with pytest.raises(NotImplementedError, match="build the network on its device"):
        actor.to("cpu")


def test_layers_follow_the_nn_linear_convention():
    actor = Actor(5, 3, 2, (16, 8))
    x, ref = torch.randn(4, 5), torch.rand(4, 3, 2)
    h = torch.cat([x, ref.flatten(1)], 1)
    for k in range(3):
        h = torch.nn.functional.linear(h, getattr(actor, f"w{k}")[0], getattr(actor, f"b{k}")[0, 0])
        h = h.relu() if k < 2 else h.tanh()
    assert torch.allclose(actor(x, ref), h.view(4, 3, 2), atol=1e-6)


def test_hand_written_backward_matches_autograd():
    critic = TwinCritic(6, 2, 3, (8, 7))
    inputs = torch.randn(5, 12, requires_grad=True)
    q = critic.trace(inputs)[-1]
    critic.flat_grad.zero_()
    (q.square() * torch.arange(1.0, 3.0).view(2, 1, 1)).sum().backward()
    expected = critic.flat_grad.clone()
    with torch.no_grad():
        outputs = critic.trace(inputs)
        grad_in = critic.backward(outputs, 2 * outputs[-1] * torch.arange(1.0, 3.0).view(2, 1, 1),
                                  input_cols=critic.action_cols)
    assert torch.allclose(critic.flat_grad, expected, atol=1e-6)
    assert torch.allclose(grad_in.sum(0), inputs.grad[:, critic.action_cols], atol=1e-6)


# ---------------------------------------------------------------------- the update
CFG = RLConfig(token_dim=5, proprio_dim=2, chunk_len=3, action_dim=2, action_scale=(1.0, 1.0), hidden=(16, 12),
               batch_size=8, gamma=0.9, tau=0.1, beta=0.7, sigma=0.2, seed=3, stride=1)


def random_batch(cfg: RLConfig, size: int, seed: int) -> Batch:
    layout = RowLayout(cfg.state_dim, cfg.chunk_len, cfg.action_dim)
    gen = torch.Generator().manual_seed(seed)
    rows = torch.rand(size, layout.width, generator=gen) * 2 - 1
    rows[:, layout.done] = (torch.rand(size, generator=gen) < 0.3).float()
    rows[:, layout.intervened] = (torch.rand(size, generator=gen) < 0.3).float()
    return Batch(rows, layout)


def autograd_update(agent: TD3, batch: Batch) -> None:
    """The textbook update with autograd and the pure loss functions, same RNG draws as TD3.update."""
    cfg, b = agent.cfg, batch
    if agent.updates > 0 and agent.updates % cfg.actor_every == 0:
        keep = reference_keep_mask(b.size, cfg.ref_dropout, agent.generator)
        mu = agent.actor.trace(torch.cat([b.state, apply_reference_dropout(b.reference, keep)], 1))[-1][0]
        q1 = agent.critic.trace(torch.cat([mu, b.state], 1))[-1][0, :, 0]
        agent.actor.flat_grad.zero_()
        actor_loss(q1, mu, b.reference, bc_weight_rows(torch.tensor(cfg.bc_weights), cfg.beta, b.intervened)).backward()
        agent.actor_opt.step()
        with torch.no_grad():
            agent.actor_target.flat.lerp_(agent.actor.flat, cfg.tau)
            agent.critic_target.flat.lerp_(agent.critic.flat, cfg.tau)
    with torch.no_grad():
        mu_next = agent.actor_target.trace(b.next_actor_input(True))[-1][0]
        noise = torch.randn(mu_next.shape, generator=agent.generator)
        a_next = (mu_next + cfg.sigma * noise).clamp(-1, 1)
        q_next = agent.critic_target(b.next_state, a_next).min(0).values
        y = td_target(b.rewards, b.done, q_next, cfg.gamma).clamp(*cfg.value_range)
    agent.critic.flat_grad.zero_()
    critic_loss(agent.critic(b.state, b.action), y).backward()
    agent.critic_opt.step()
    agent.updates += 1


@pytest.mark.parametrize("beta_axes", [(), (1.0, 0.2)])
def test_update_matches_autograd_reference(beta_axes):
    cfg = CFG.replace(beta_axes=beta_axes)
    ours, ref = TD3(cfg), TD3(cfg)
    assert torch.equal(ours.critic.flat, ref.critic.flat)
    for i in range(5):
        batch = random_batch(CFG, CFG.batch_size, seed=i)
        stats = ours.update(batch, stats=True)
        autograd_update(ref, Batch(batch.rows.clone(), batch.layout))
        for name in ("actor", "critic", "actor_target", "critic_target"):
            assert torch.allclose(getattr(ours, name).flat, getattr(ref, name).flat, atol=1e-5), (i, name)
    assert ours.actor_updates == 2  # before updates 2 and 4: every actor_every = 2 critic updates
    assert set(stats) == {"critic_loss", "q", "td_target", "actor_loss", "actor_q", "bc"}
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in stats.values())


def test_td_targets_are_clipped_to_the_value_range():
    agent = TD3(CFG.replace(value_range=(0.0, 1.0)))
    with torch.no_grad():
        agent.critic_target.flat.mul_(50.0)  # a wildly overestimating target critic
    batch = random_batch(CFG, CFG.batch_size, seed=3)
    unclipped = TD3(CFG.replace(value_range=(-1e9, 1e9)))
    unclipped.critic_target.flat.copy_(agent.critic_target.flat)
    y = agent.update(batch, stats=True)["td_target"].item()
    y_free = unclipped.update(batch, stats=True)["td_target"].item()
    assert 0.0 <= y <= 1.0 and not 0.0 <= y_free <= 1.0


def test_pass_through_ablation_updates_without_reference_input():
    cfg = CFG.replace(use_reference=False)
    agent = TD3(cfg)
    for i in range(3):
        agent.update(random_batch(cfg, 8, seed=i))
    assert agent.actor.in_dim == cfg.state_dim


def test_act_mean_and_exploration():
    agent = TD3(CFG)
    x, ref = torch.randn(64, CFG.state_dim), torch.zeros(64, CFG.chunk_len, CFG.action_dim)
    mean = agent.act(x, ref, explore=False)
    assert torch.equal(mean, agent.act(x, ref, explore=False))
    noisy = agent.act(x, ref, explore=True)
    assert noisy.abs().max() <= 1
    assert (noisy - mean).std().item() == pytest.approx(CFG.sigma, rel=0.2)
