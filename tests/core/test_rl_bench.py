"""The update benchmark: FLOP count on a literal config and a fast smoke run of the report."""

from __future__ import annotations

from rlt.bench.learner import bench_learner, flops_per_update, format_report
from rlt.rl.config import RLConfig


def test_flops_per_update_literal():
    # S = 2, C·D = 1, hidden (2,): actor 3->2->1, critic 3->2->1 (8 MACs each, 2 of them past layer 0)
    cfg = RLConfig(token_dim=1, proprio_dim=1, chunk_len=1, action_dim=1, action_scale=(1.0,), hidden=(2,),
                   actor_every=1, stride=1)
    # critic step: target actor 8 + target critics 16 + critics 16 + weight grads 16 + input grads 4 = 60
    # actor step: actor 8 + Q1 8 + Q1 input grads 2 (+ 2 into μ) + actor weight grads 8 + input grads 2 = 30
    assert flops_per_update(cfg, 1) == 2 * (60 + 30)
    assert flops_per_update(cfg.replace(actor_every=2), 4) == 2 * 4 * (60 + 15)


def test_bench_smoke():
    report = bench_learner(token_dim=8, proprio_dim=2, chunk_len=2, action_dim=2, hidden=(16, 16), batches=(8, 4),
                           threads=1, seconds=0.2, rounds=2)
    assert [r["batch"] for r in report["results"]] == [8, 4]
    for r in report["results"]:
        assert r["ours_updates_per_s"] > 0 and r["plain_updates_per_s"] > 0 and r["matmul_gflops"] > 0
        assert r["speedup"] == r["ours_updates_per_s"] / r["plain_updates_per_s"]
    text = format_report(report)
    assert "1 torch thread(s)" in text and len(text.splitlines()) == 4
