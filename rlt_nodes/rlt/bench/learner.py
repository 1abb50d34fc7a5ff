"""Update-throughput benchmark: the project's learner update against a plain PyTorch TD3 loop of the same sizes.

This module owns the measurement only. In one run and for each batch size it reports
* updates/s of `TD3.update(ReplayBuffer.sample(B))` (what `Learner.run` executes),
* updates/s of a naive textbook TD3 loop (separate `nn.Sequential` critics, autograd, default Adam, a critic
  gradient in the actor step, per-parameter Polyak), same algorithm, sizes and sampling,
* the matmul FLOPs of one update and the GFLOP/s of plain `torch.mm` at the layer shapes (a practical
  roofline), so the fraction of it the update reaches is visible.
The two loops are timed in alternating short blocks and the medians are reported, so load from other processes
hits both alike. Run `python -m rlt.bench.learner` for the default report.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from rlt.rl.config import RLConfig
from rlt.rl.networks import Actor, TwinCritic
from rlt.rl.replay import ReplayBuffer
from rlt.rl.td3 import TD3, actor_loss, apply_reference_dropout, critic_loss, reference_keep_mask, td_target


# ---------------------------------------------------------------------- the baseline
class PlainTD3:
    """Textbook TD3 (Fujimoto et al. style) with RLT's losses: what one would write without optimizing."""

    def __init__(self, cfg: RLConfig, capacity: int = 10_000) -> None:
        self.cfg = cfg
        s, a = cfg.state_dim, cfg.chunk_len * cfg.action_dim
        self.actor = _sequential(s + a, cfg.hidden, a)
        self.q1, self.q2 = _sequential(s + a, cfg.hidden, 1), _sequential(s + a, cfg.hidden, 1)
        self.targets = [copy.deepcopy(m) for m in (self.actor, self.q1, self.q2)]
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam([*self.q1.parameters(), *self.q2.parameters()], lr=cfg.critic_lr)
        self.bc_weights = torch.tensor(cfg.bc_weights)  # float32[C·D], β per dim
        sizes = {"x": s, "a": a, "ref": a, "r": cfg.chunk_len, "done": 1, "x2": s, "ref2": a}
        self.data = {k: torch.rand(capacity, n) * 2 - 1 for k, n in sizes.items()}
        self.data["done"] = (self.data["done"] > 0.9).float()
        self.it = 0

    def update(self, batch_size: int) -> None:
        cfg = self.cfg
        idx = torch.randint(len(self.data["x"]), (batch_size,))
        b = {k: v[idx] for k, v in self.data.items()}
        actor_t, q1_t, q2_t = self.targets
        with torch.no_grad():
            mu2 = torch.tanh(actor_t(torch.cat([b["x2"], b["ref2"]], 1)))
            a2 = (mu2 + cfg.sigma * torch.randn_like(mu2)).clamp(-1, 1)
            u2 = torch.cat([b["x2"], a2], 1)
            y = td_target(b["r"], b["done"][:, 0], torch.min(q1_t(u2), q2_t(u2))[:, 0], cfg.gamma)
        u = torch.cat([b["x"], b["a"]], 1)
        loss = critic_loss(torch.stack([self.q1(u)[:, 0], self.q2(u)[:, 0]]), y)
        self.critic_opt.zero_grad()
        loss.backward()
        self.critic_opt.step()
        self.it += 1
        if self.it % cfg.actor_every == 0:
            keep = reference_keep_mask(batch_size, cfg.ref_dropout)
            mu = torch.tanh(self.actor(torch.cat([b["x"], apply_reference_dropout(b["ref"], keep)], 1)))
            loss = actor_loss(self.q1(torch.cat([b["x"], mu], 1))[:, 0], mu, b["ref"], self.bc_weights)
            self.actor_opt.zero_grad()
            loss.backward()
            self.actor_opt.step()
            for net, target in zip((self.actor, self.q1, self.q2), self.targets, strict=True):
                for p, tp in zip(net.parameters(), target.parameters(), strict=True):
                    tp.data.copy_(cfg.tau * p.data + (1 - cfg.tau) * tp.data)


def _sequential(in_dim: int, hidden: Sequence[int], out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(in_dim, h), nn.ReLU()]
        in_dim = h
    return nn.Sequential(*layers, nn.Linear(in_dim, out_dim))


# ---------------------------------------------------------------------- FLOPs and roofline
def _layer_dims(cfg: RLConfig) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(in, out) of every layer of the actor and of one critic."""
    sizes = (cfg.state_dim, cfg.chunk_len, cfg.action_dim, cfg.hidden)
    return Actor(*sizes, cfg.use_reference).layer_dims, TwinCritic(*sizes).layer_dims


def flops_per_update(cfg: RLConfig, batch_size: int) -> float:
    """Matmul FLOPs (2·B·in·out per GEMM) of one `TD3.update`, the actor step amortized over `actor_every`."""
    actor, critic = _layer_dims(cfg)
    chunk = cfg.chunk_len * cfg.action_dim
    fwd_a, fwd_q = sum(i * o for i, o in actor), sum(i * o for i, o in critic)
    igrad_a, igrad_q = fwd_a - actor[0][0] * actor[0][1], fwd_q - critic[0][0] * critic[0][1]  # no input grads
    critic_step = fwd_a + 2 * fwd_q + 2 * fwd_q + 2 * (fwd_q + igrad_q)  # targets, forward, weight + input grads
    actor_step = fwd_a + fwd_q + igrad_q + chunk * critic[0][1] + fwd_a + igrad_a  # Q1 input grad to μ only
    return 2.0 * batch_size * (critic_step + actor_step / cfg.actor_every)


def matmul_gflops(cfg: RLConfig, batch_size: int, seconds: float = 0.3) -> float:
    """GFLOP/s of plain torch.mm over the forward layer shapes of actor and critic at this batch size."""
    actor, critic = _layer_dims(cfg)
    ops = [(torch.randn(batch_size, i), torch.randn(i, o), torch.empty(batch_size, o)) for i, o in actor + critic]
    flops = 2.0 * batch_size * sum(i * o for i, o in actor + critic)

    def run() -> None:
        for x, w, out in ops:
            torch.mm(x, w, out=out)

    return flops * _rate(run, seconds) / 1e9


def _rate(fn: Callable[[], None], seconds: float, warmup: int = 3) -> float:
    """Calls of fn per second over about `seconds`."""
    for _ in range(warmup):
        fn()
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        n += 1
    return n / elapsed


# ---------------------------------------------------------------------- the benchmark
def bench_learner(
    token_dim: int = 256,
    proprio_dim: int = 12,
    chunk_len: int = 10,
    action_dim: int = 6,
    hidden: tuple[int, ...] = (256, 256),
    batches: tuple[int, ...] = (256, 64),
    threads: int = 2,
    seconds: float = 6.0,
    rounds: int = 6,
) -> dict[str, object]:
    """Measure ours vs the plain loop for each batch size; `seconds` per batch size, split into `rounds` blocks.

    Returns {"threads", "sizes", "results": [{"batch", "ours_updates_per_s", "plain_updates_per_s", "speedup",
    "gflop_per_update", "ours_gflops", "matmul_gflops", "roofline_fraction"}, ...]}.
    """
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        results = []
        for batch in batches:
            cfg = RLConfig(token_dim=token_dim, proprio_dim=proprio_dim, chunk_len=chunk_len, action_dim=action_dim,
                           hidden=hidden, action_scale=(1.0,) * action_dim, batch_size=batch)
            results.append(_bench_batch(cfg, batch, seconds / (2 * rounds), rounds))
    finally:
        torch.set_num_threads(previous_threads)
    sizes = {"token_dim": token_dim, "proprio_dim": proprio_dim, "chunk_len": chunk_len, "action_dim": action_dim,
             "hidden": list(hidden)}
    return {"threads": threads, "sizes": sizes, "results": results}


def _bench_batch(cfg: RLConfig, batch: int, block: float, rounds: int) -> dict[str, float]:
    ours, buffer = TD3(cfg), ReplayBuffer(10_000, cfg.token_dim, cfg.proprio_dim, cfg.chunk_len, cfg.action_dim)
    _fill_random(buffer)
    plain = PlainTD3(cfg)
    ours_rates, plain_rates = [], []
    for _ in range(rounds):
        ours_rates.append(_rate(lambda: ours.update(buffer.sample(batch)), block))
        plain_rates.append(_rate(lambda: plain.update(batch), block))
    ours_ups, plain_ups = statistics.median(ours_rates), statistics.median(plain_rates)
    flops = flops_per_update(cfg, batch)
    roof = matmul_gflops(cfg, batch)
    return {
        "batch": batch,
        "ours_updates_per_s": ours_ups,
        "plain_updates_per_s": plain_ups,
        "speedup": ours_ups / plain_ups,
        "gflop_per_update": flops / 1e9,
        "ours_gflops": ours_ups * flops / 1e9,
        "matmul_gflops": roof,
        "roofline_fraction": ours_ups * flops / 1e9 / roof,
    }


def _fill_random(buffer: ReplayBuffer) -> None:
    """Uniform random rows (each terminal with probability 0.1), written straight into storage: throughput only."""
    rows: Tensor = torch.rand(buffer.capacity, buffer.layout.width) * 2 - 1
    rows[:, buffer.layout.done] = (rows[:, buffer.layout.done] > 0.8).float()
    buffer.add_rows(rows)


def format_report(report: dict[str, object]) -> str:
    """A fixed-width table of `bench_learner`'s result."""
    sizes = report["sizes"]
    lines = [
        f"learner update benchmark, {report['threads']} torch thread(s), Z={sizes['token_dim']} "
        f"P={sizes['proprio_dim']} C={sizes['chunk_len']} D={sizes['action_dim']} hidden={sizes['hidden']}",
        f"{'batch':>6} {'ours/s':>9} {'plain/s':>9} {'speedup':>8} {'GFLOP/upd':>10} {'ours GF/s':>10} "
        f"{'mm GF/s':>8} {'roofline':>9}",
    ]
    for r in report["results"]:
        lines.append(
            f"{r['batch']:>6} {r['ours_updates_per_s']:>9.1f} {r['plain_updates_per_s']:>9.1f} {r['speedup']:>7.2f}x "
            f"{r['gflop_per_update']:>10.3f} {r['ours_gflops']:>10.1f} {r['matmul_gflops']:>8.1f} "
            f"{r['roofline_fraction']:>8.0%}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_report(bench_learner()))
