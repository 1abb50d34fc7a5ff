"""The session's artifact cache of base-VLA rollouts: reused when recorded with the wanted RolloutConfig, else
re-recorded (the VLA is faked: a policy that descends straight down; recording is the real one)."""

import shutil

import numpy as np
import pytest

pytest.importorskip("mujoco")
from rlt.models import recipe
from rlt.session import SessionConfig, SimSession
from rlt.sim.config import RolloutConfig, SimConfig
from rlt.sim.demos import read_dataset_info, record_rollouts

pytestmark = pytest.mark.sim


def _descend(images: dict, proprio: np.ndarray) -> np.ndarray:
    return np.tile(np.array([0.0, 0.0, -0.002, 0.0], dtype=np.float32), (10, 1))


def test_rollouts_are_rerecorded_when_their_config_changed(tmp_path, monkeypatch):
    recorded = []

    def fake_record(vla_checkpoint, out_dir, cfg, preset, progress):  # the VLA checkpoint is not read
        recorded.append(cfg)
        record_rollouts(out_dir, _descend, SimConfig(preset=preset, cameras=()), cfg, progress=False)

    monkeypatch.setattr(recipe, "record_vla_rollouts", fake_record)
    session = SimSession(SessionConfig(artifacts_dir=str(tmp_path), demo_scale=0.001), progress=False)
    out = session.build_rollouts(tmp_path / "vla.pt")
    wanted = RolloutConfig(episodes=2)
    assert recorded == [wanted] and out == tmp_path / "rollouts" / "main"
    assert session.build_rollouts(tmp_path / "vla.pt") == out and len(recorded) == 1  # cached
    shutil.rmtree(out)  # as an older version of the recipe recorded them: no operator finishing failed episodes
    record_rollouts(out, _descend, SimConfig(cameras=()), wanted.replace(finish_steps=0), progress=False)
    assert session.build_rollouts(tmp_path / "vla.pt") == out and recorded == [wanted, wanted]
    assert read_dataset_info(out)["rollout_config"] == wanted.to_dict()
    assert not (tmp_path / "rollouts" / ".partial" / "main").exists()
