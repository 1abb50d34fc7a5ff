"""rlt.diagnostics.Health: latency windows give p50 / p99 of the last samples, counters and gauges flatten to text."""

import math

import pytest

from rlt.diagnostics import DiagnosticsConfig, Health, parse_snapshot


def test_percentiles_of_the_last_window_samples():
    health = Health(window=100)
    for ms in range(1, 201):  # 1..200 ms; the window keeps 101..200
        health.latency("obs_to_chunk", ms / 1e3)
    p50, p99, n = health.percentiles("obs_to_chunk")
    assert n == 100 and p50 == pytest.approx(0.1505) and p99 == pytest.approx(0.19901)
    assert all(math.isnan(v) for v in health.percentiles("never")[:2]) and health.percentiles("never")[2] == 0


def test_snapshot_flattens_stages_counters_and_gauges():
    health = Health()
    health.latency("forward", 0.012)
    health.latency("forward", 0.030)
    health.count("holds")
    health.count("holds", 2)
    health.set("fresh_chunk_share", 0.99875)
    health.set("provider", "CPU")
    values = health.snapshot()
    assert values == {"forward_p50_ms": "21.0", "forward_p99_ms": "29.8", "forward_max_ms": "30.0", "forward_n": "2",
                      "holds": "3", "fresh_chunk_share": "0.9988", "provider": "CPU"}
    assert parse_snapshot(values) == {"forward_p50_ms": 21.0, "forward_p99_ms": 29.8, "forward_max_ms": 30.0,
                                      "forward_n": 2.0, "holds": 3.0, "fresh_chunk_share": 0.9988}


def test_a_window_must_hold_samples():
    with pytest.raises(ValueError, match="window"):
        DiagnosticsConfig(window=0)
