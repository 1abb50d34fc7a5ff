"""The RLT actor–critic update (chunked TD3 with a reference-conditioned, BC-regularized actor).

This module owns the losses and one gradient step of each network. Losses, in normalized action units:

    critic:  Q̂ = Σ_{t'<C} γ^t' r_t' + (1 − done) · γ^C · min_j Q'_j(x', a'),   a' = clip(μθ'(x', ã') + σε, −1, 1)
             Q̂ clipped to `value_range` (the returns the reward allows)
             L_Q = Σ_j mean_B (Q_j(x, a) − Q̂)²                        (no reference dropout in the target)
    actor:   L_π = mean_B [ −Q1(x, μ) + Σ_{C·D} w (μ − ã)² ],   μ = μθ(x, ã_drop)
             w = β × beta_axes on the VLA's references, β on every dim where ã is the human's chunk (intervened)
             ã_drop zeroes ã per transition with probability `ref_dropout` (the actor's INPUT only; the BC target
             is the true ã, which for human chunks is a_human)

The actor is updated once per `actor_every` critic updates (delayed actor), and the target networks follow by
Polyak averaging after each actor update, as in TD3. `update` runs a due actor step BEFORE its critic step, on the
same batch: the sequence of network versions is exactly TD3's (… critic k, actor, targets, critic k+1 …); only the
actor's batch is drawn one update later, which is the same distribution.

The pure loss functions below are what the tests check on literal arrays; the hot loop evaluates the same math
with hand-written backward passes (`MLPEnsemble.backward`): no autograd graph, no gradient for the critic's
weights in the actor step, one fused Adam op per network, one op per Polyak update and no host synchronization
(statistics are returned as tensors, read only when asked for).
"""

from __future__ import annotations

import torch
from torch import Tensor

from rlt.rl.config import RLConfig
from rlt.rl.networks import Actor, TwinCritic
from rlt.rl.replay import Batch


# ---------------------------------------------------------------------- pure loss terms (tested on literals)
def discounts(chunk_len: int, gamma: float, device: torch.device | str = "cpu") -> Tensor:
    """float32[C]: γ^0, γ^1, ..., γ^(C-1)."""
    return gamma ** torch.arange(chunk_len, dtype=torch.float32, device=device)


def td_target(rewards: Tensor, done: Tensor, q_next: Tensor, gamma: float) -> Tensor:
    """Q̂ = Σ_t' γ^t' r_t' + (1 − done) γ^C q_next.  rewards float32[B, C], done float32[B], q_next float32[B]."""
    chunk_len = rewards.shape[-1]
    discounted = rewards @ discounts(chunk_len, gamma, rewards.device)  # float32[B]
    return torch.addcmul(discounted, 1.0 - done, q_next, value=gamma**chunk_len)


def reference_keep_mask(batch_size: int, ref_dropout: float, generator: torch.Generator | None = None,
                        device: torch.device | str = "cpu") -> Tensor:
    """float32[B, 1]: 0 where a transition's reference is dropped (probability ref_dropout), else 1."""
    u = torch.rand(batch_size, 1, generator=generator, device=device)
    return (u >= ref_dropout).to(torch.float32)


def apply_reference_dropout(ref: Tensor, keep: Tensor) -> Tensor:
    """ref float32[B, C·D] (or [B, C, D]) with the rows where keep[B, 1] == 0 zeroed."""
    return ref * keep.view(-1, *([1] * (ref.dim() - 1)))


def bc_term(mu: Tensor, ref: Tensor, beta: float | Tensor) -> Tensor:
    """β · mean_B Σ_{C·D} (μ − ã)²: squared error SUMMED over the chunk's dims, averaged over the batch; β a scalar
    or float32[C·D], one weight per flattened dim (`RLConfig.bc_weights`)."""
    return (beta * (mu - ref).square().flatten(1)).sum(1).mean()


def bc_weight_rows(bc_weights: Tensor, beta: float, intervened: Tensor) -> Tensor:
    """float32[B, C·D]: the per-dim BC weights `bc_weights` float32[C·D] (β × beta_axes) toward the VLA's reference,
    and β on every dim of the rows whose reference is the human's chunk (intervened float32[B], 1.0 = human): a
    low beta_axes weight frees the actor from the VLA's chunk on that axis, not from the operator's."""
    return torch.where(intervened[:, None] > 0.5, torch.full_like(bc_weights, beta), bc_weights)


def critic_loss(q: Tensor, target: Tensor) -> Tensor:
    """Σ_j mean_B (Q_j − Q̂)².  q float32[2, B], target float32[B]."""
    return (q - target).square().mean(1).sum()


def actor_loss(q1: Tensor, mu: Tensor, ref: Tensor, beta: float | Tensor) -> Tensor:
    """mean_B(−Q1) + bc_term.  q1 float32[B], mu and ref float32[B, C·D]."""
    return -q1.mean() + bc_term(mu, ref, beta)


# ---------------------------------------------------------------------- the agent
class TD3:
    """Actor, twin critic, their targets and Adam optimizers; `update(batch)` is one critic step (+ actor step)."""

    def __init__(self, cfg: RLConfig, device: torch.device | str = "cpu") -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        sizes = (cfg.state_dim, cfg.chunk_len, cfg.action_dim, cfg.hidden)
        self.actor = Actor(*sizes, cfg.use_reference, device=self.device, seed=cfg.seed)
        self.actor_target = Actor(*sizes, cfg.use_reference, device=self.device)
        self.critic = TwinCritic(*sizes, device=self.device, seed=cfg.seed + 1)
        self.critic_target = TwinCritic(*sizes, device=self.device)
        self.actor_target.copy_from(self.actor)
        self.critic_target.copy_from(self.critic)
        self.actor_opt = torch.optim.Adam([self.actor.flat], lr=cfg.actor_lr, fused=True)  # one op per step
        self.critic_opt = torch.optim.Adam([self.critic.flat], lr=cfg.critic_lr, fused=True)
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.seed + 2)
        self.bc_weights = torch.tensor(cfg.bc_weights, device=self.device)  # float32[C·D], β per dim
        self.updates = 0  # critic updates done
        self.actor_updates = 0
        self._grad_q1: dict[int, Tensor] = {}  # batch size -> float32[1, B, 1] filled with −1/B

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def act(self, x: Tensor, ref: Tensor, explore: bool) -> Tensor:
        """x float32[B, S], ref float32[B, C, D] -> chunk float32[B, C, D]: the mean, or + σ noise when exploring."""
        sigma = self.cfg.sigma if explore else 0.0
        mu = self.actor.act_on(self.actor.inputs(x, ref), sigma, self.generator)
        return mu.view(-1, self.cfg.chunk_len, self.cfg.action_dim)

    # ------------------------------------------------------------------ learning
    @torch.no_grad()
    def update(self, batch: Batch, stats: bool = False) -> dict[str, Tensor]:
        """One critic update on `batch` (preceded by an actor update every `actor_every`-th call).

        Returns {} unless `stats`; then 0-d tensors (no host sync here): critic_loss, q, td_target and, on actor
        updates, actor_loss, actor_q, bc.
        """
        out: dict[str, Tensor] = {}
        if self.updates > 0 and self.updates % self.cfg.actor_every == 0:
            self._actor_step(batch, out if stats else None)
            self.actor_target.flat.lerp_(self.actor.flat, self.cfg.tau)
            self.critic_target.flat.lerp_(self.critic.flat, self.cfg.tau)
        self._critic_step(batch, out if stats else None)
        self.updates += 1
        return out

    def _critic_step(self, batch: Batch, stats: dict[str, Tensor] | None) -> None:
        cfg, critic = self.cfg, self.critic
        a_next = self.actor_target.act_on(batch.next_actor_input(cfg.use_reference), cfg.sigma, self.generator)
        q_next = self.critic_target.trace(critic.inputs(batch.next_state, a_next))[-1]  # float32[2, B, 1]
        y = td_target(batch.rewards, batch.done, q_next.amin(0)[:, 0], cfg.gamma).clamp_(*cfg.value_range)  # [B]
        outputs = critic.trace(batch.critic_input)
        q = outputs[-1]  # float32[2, B, 1]
        critic.backward(outputs, (q - y[:, None]).mul_(2.0 / batch.size))  # d critic_loss / dq
        self.critic_opt.step()
        if stats is not None:
            stats.update(critic_loss=critic_loss(q[..., 0], y), q=q.mean(), td_target=y.mean())

    def _actor_step(self, batch: Batch, stats: dict[str, Tensor] | None) -> None:
        cfg, actor, critic = self.cfg, self.actor, self.critic
        size = batch.size
        ref = batch.reference  # float32[B, C·D], also the BC target
        inputs = batch.actor_input(cfg.use_reference)
        if cfg.use_reference and cfg.ref_dropout > 0:
            keep = reference_keep_mask(size, cfg.ref_dropout, self.generator, self.device)
            inputs = actor.inputs(batch.state, apply_reference_dropout(ref, keep))
        a_outputs = actor.trace(inputs)
        mu = a_outputs[-1][0]  # float32[B, C·D]
        q_outputs = critic.trace(critic.inputs(batch.state, mu), member=0)
        grad_q1 = self._grad_q1.get(size)
        if grad_q1 is None:
            grad_q1 = self._grad_q1[size] = torch.full((1, size, 1), -1.0 / size, device=self.device)
        grad_mu = critic.backward(q_outputs, grad_q1, member=0, weight_grads=False, input_cols=critic.action_cols)[0]
        weights = self.bc_weights if not cfg.beta_axes else bc_weight_rows(self.bc_weights, cfg.beta, batch.intervened)
        grad_mu.addcmul_(mu - ref, weights, value=2.0 / size)  # + d bc_term / dμ
        grad_mu.sub_(grad_mu * mu.square())  # through tanh: × (1 − μ²)
        actor.backward(a_outputs, grad_mu[None])
        self.actor_opt.step()
        self.actor_updates += 1
        if stats is not None:
            q1 = q_outputs[-1][0, :, 0]
            beta = weights
            stats.update(actor_loss=actor_loss(q1, mu, ref, beta), actor_q=q1.mean(), bc=bc_term(mu, ref, beta))

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, object]:
        """Everything needed to resume exactly: networks, targets, optimizers, counters, RNG state (tensors only)."""
        return {
            "actor": self.actor.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "updates": self.updates,
            "actor_updates": self.actor_updates,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, object]) -> None:
        for name in ("actor", "actor_target", "critic", "critic_target"):
            getattr(self, name).load_state_dict(state[name])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.updates, self.actor_updates = int(state["updates"]), int(state["actor_updates"])
        self.generator.set_state(state["generator"].cpu())  # a byte tensor, even when loaded onto cuda
