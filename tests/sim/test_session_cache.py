"""The session's artifact cache: an artifact is reused only when its key (the configs and inputs that made it)
matches; a stale or unkeyed one is rebuilt with a message naming what differs (the VLA is faked for the rollouts:
a policy that descends straight down; recording is the real one)."""

import numpy as np
import pytest

pytest.importorskip("mujoco")
from rlt.app import recipe
from rlt.app.session import SessionConfig, SimSession
from rlt.artifacts import make_key, read_key
from rlt.sim.config import RolloutConfig, SimConfig
from rlt.sim.demos import read_dataset_info, record_rollouts

pytestmark = pytest.mark.sim


def _descend(images: dict, proprio: np.ndarray) -> np.ndarray:
    return np.tile(np.array([0.0, 0.0, -0.002, 0.0], dtype=np.float32), (10, 1))


def test_rollouts_are_rerecorded_when_their_key_changed(tmp_path, monkeypatch, capsys):
    recorded = []

    def fake_record(vla_checkpoint, out_dir, cfg, preset, progress):  # the VLA checkpoint is not read
        recorded.append(cfg)
        record_rollouts(out_dir, _descend, SimConfig(preset=preset, cameras=()), cfg, progress=False)

    monkeypatch.setattr(recipe, "record_vla_rollouts", fake_record)
    session = SimSession(SessionConfig(artifacts_dir=str(tmp_path), demo_scale=0.001), progress=False)
    session.keys["vla"] = make_key({"vla": 1})
    out = session.build_rollouts(tmp_path / "vla.pt")
    wanted = RolloutConfig(episodes=2)
    assert recorded == [wanted] and out == tmp_path / "rollouts" / "main"
    assert read_key(out) == session.keys["rollouts"] and (out / "DONE").is_file()
    assert session.build_rollouts(tmp_path / "vla.pt") == out and len(recorded) == 1  # cached
    session.keys["vla"] = make_key({"vla": 2})  # the VLA was retrained: its rollouts are stale
    capsys.readouterr()
    assert session.build_rollouts(tmp_path / "vla.pt") == out and recorded == [wanted, wanted]
    assert "rollouts: building" in (printed := capsys.readouterr().out) and "inputs.vla: " in printed
    (out / "artifact_key.json").unlink()  # as recorded before keys existed: settings unknown, never reused
    session.build_rollouts(tmp_path / "vla.pt")
    assert len(recorded) == 3 and "no artifact_key.json" in capsys.readouterr().out
    assert read_dataset_info(out)["rollout_config"] == wanted.to_dict()
    assert not (tmp_path / "rollouts" / ".partial" / "main").exists()


def test_a_changed_config_rebuilds_and_names_the_field(tmp_path, monkeypatch, capsys):
    """The demos key holds the recipe, the sim configs and the camera view: a different demo scale rebuilds."""
    calls = []
    monkeypatch.setattr("rlt.app.recipe.record_vla_demos", lambda out, *a, **k: calls.append(a) or out)

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr("rlt.models.bc.train_vla", stop)
    for scale, built in ((0.01, 1), (0.01, 1), (0.02, 2)):
        with pytest.raises(Stop):
            SimSession(SessionConfig(artifacts_dir=str(tmp_path), demo_scale=scale), progress=False).build_artifacts()
        assert len(calls) == built
    assert "demos: building" in (printed := capsys.readouterr().out) and "configs.scale: 0.01 -> 0.02" in printed
