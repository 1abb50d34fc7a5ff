"""A seconds-scale version of the main job through ROS (every node its own process) produces the report."""

import json

import pytest

from rlt.app.session import SessionConfig, SimSession

pytestmark = [pytest.mark.ros, pytest.mark.sim]


def test_tiny_session_writes_the_report(tmp_path, ros_domain, monkeypatch):
    monkeypatch.setenv("ROS_DOMAIN_ID", str(ros_domain))
    cfg = SessionConfig(
        out_dir=str(tmp_path / "run"),
        artifacts_dir=str(tmp_path / "artifacts"),
        demo_scale=0.01,
        rl_minutes=0.3,
        eval_episodes=3,
        train_mode="critical",
        variants=("plain_token",),
        tiny=True,
    )
    summary = SimSession(cfg, progress=False).run()
    report = tmp_path / "run" / "report"
    for name in ("throughput.png", "durations.png"):
        assert (report / name).read_bytes()[:4] == b"\x89PNG" and (report / name).stat().st_size > 10_000, name
    assert "| policy | success |" in (report / "summary.md").read_text()
    saved = json.loads((report / "summary.json").read_text())
    assert saved["base"]["episodes"] == saved["rlt"]["episodes"] == 3
    labels = [row["label"] for row in saved["rows"]]
    assert labels == ["base VLA", "RLT (goal entries, noisy operator)", "RLT (plain token, noisy operator)",
                      "demo teleoperator (scripted, true pose)"]
    assert saved["evaluation_seeds"].startswith("evaluation range")
    assert (tmp_path / "run" / "rlt_plain_token_learner" / "actor_weights.npz").is_file()
    assert (tmp_path / "artifacts" / "vla_plain.onnx").is_file()  # the paper's token: its own export
    assert saved["rl_data_minutes"] >= 0.3  # the driver ran until the RL-data budget was spent
    assert summary["learner_updates"] > 0  # the learner trained on transitions from the actor process
    assert (tmp_path / "run" / "learner" / "actor_weights.npz").is_file()
    # training ran with the scripted operator (session sim_human); its share is reported, evaluation had none
    assert (tmp_path / "run" / "logs" / "train" / "sim_human.log").is_file()
    assert not (tmp_path / "run" / "logs" / "eval_rlt" / "sim_human.log").exists()
    assert 0.0 <= saved["train_interventions"]["human_step_share"] <= 1.0
    rollouts = tmp_path / "artifacts" / "rollouts" / "main"  # the base VLA's episodes, the token's goal data
    assert (rollouts / "metadata.yaml").is_file() and not (rollouts.parent / ".partial" / "main").exists()
