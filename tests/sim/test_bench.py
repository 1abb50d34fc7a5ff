"""bench_sim / format_report on a tiny budget: the report has every figure and prints as a table."""

import pytest

pytestmark = pytest.mark.sim
pytest.importorskip("mujoco")

from rlt.bench.sim import bench_sim, format_report  # noqa: E402


def test_bench_reports_throughput_and_calibration():
    report = bench_sim(
        image_size=32,
        steps=30,
        camera_sets=((), ("front", "wrist")),
        bias_levels=(0.0, 0.002),
        episodes=2,
        mode="critical",
    )
    assert [row["cameras"] for row in report["throughput"]] == [[], ["front", "wrist"]]
    for row in report["throughput"]:
        assert row["steps"] >= 30 and row["steps_per_s"] > 0
    assert [row["bias_xy_sigma"] for row in report["expert"]] == [0.0, 0.002]
    assert report["expert"][0]["success_rate"] == 1.0 and report["expert"][0]["episodes"] == 2
    text = format_report(report)
    assert "front+wrist" in text and "none" in text and "100%" in text and "MUJOCO_GL=" in text
    assert len(text.splitlines()) == 2 + 2 + 1 + 2
