"""The session report: intervals paired by seed, the headline table, the share faster than every demo."""

import json

import numpy as np
import pytest

from rlt.app.report import RunLogs, faster_share, headline_table, paired_bootstrap, write_report


def _log(success, steps, first=7_000_000):
    return [{"seed": first + k, "success": bool(s), "critical_steps": int(n), "control_hz": 20}
            for k, (s, n) in enumerate(zip(success, steps, strict=True))]


def test_the_ratio_interval_is_paired_by_seed():
    rng = np.random.default_rng(0)
    success, steps = rng.random(150) < 0.6, rng.integers(20, 100, 150)
    same = paired_bootstrap(_log(success, steps), _log(success, steps))
    assert same["throughput_ratio"] == [1.0, 1.0]  # unpaired resampling would spread around 1
    faster = paired_bootstrap(_log(success, steps), _log(success, steps // 2))
    lo, hi = faster["throughput_ratio"]
    assert 1.8 < lo <= hi < 2.3  # each seed's episode takes half the time: about 2x, with a narrow interval
    lo, hi = faster["success_rate"]
    assert lo <= success.mean() <= hi


def test_logs_on_different_seeds_are_refused():
    with pytest.raises(ValueError, match="different seeds"):
        paired_bootstrap(_log([1, 0], [30, 100]), _log([1, 0], [30, 100], first=1_000_000))


def test_faster_share_counts_successes_only():
    assert faster_share(_log([1, 1, 0, 1], [20, 30, 10, 25]), 26) == pytest.approx(2 / 3)


def test_write_report_has_one_row_per_policy(tmp_path):
    rng = np.random.default_rng(1)
    base = _log(rng.random(40) < 0.5, rng.integers(25, 100, 40))
    runs = [RunLogs("rlt", "RLT (goal entries, noisy operator)", base, _log(rng.random(40) < 0.9, np.full(40, 24))),
            RunLogs("rlt_plain_token", "RLT (plain token, noisy operator)", base, base)]
    teleop = _log(np.ones(40), np.full(40, 29))
    summary = write_report(tmp_path, base, runs, teleop, [27, 25, 30], {"evaluation_seeds": "evaluation range"})
    labels = [row["label"] for row in summary["rows"]]
    assert labels == ["base VLA", runs[0].label, runs[1].label, "demo teleoperator (scripted, true pose)"]
    assert summary["rows"][1]["faster_than_fastest_demo"] == 1.0 and summary["rows"][3]["faster_than_fastest_demo"] == 0
    assert summary["rows"][2]["throughput_ratio_ci95"] == [1.0, 1.0]
    assert summary["demos"]["fastest_steps"] == 25
    assert summary["throughput_ratio"] == summary["rows"][1]["throughput_ratio"]
    table = headline_table(json.loads((tmp_path / "summary.json").read_text()))
    assert table in (tmp_path / "summary.md").read_text() and table.count("\n") == 5
