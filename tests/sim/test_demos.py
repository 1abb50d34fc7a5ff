"""Demo datasets: a tiny recording reads back as exactly the arrays the expert produced, as a valid rosbag2."""

import itertools

import numpy as np
import pytest

pytestmark = pytest.mark.sim
pytest.importorskip("mujoco")

from rlt.bags.io import BagReader  # noqa: E402
from rlt.sim.config import ExpertConfig, RolloutConfig, SimConfig  # noqa: E402
from rlt.sim.demos import (  # noqa: E402
    ACTION_TOPIC,
    EVENTS_TOPIC,
    JOINTS_TOPIC,
    TIP_TOPIC,
    camera_topic,
    demo_seed,
    load_demos,
    read_dataset_info,
    record_demos,
    record_rollouts,
)
from rlt.sim.env import TASK_INSTRUCTION, PegInsertEnv  # noqa: E402
from rlt.sim.expert import ScriptedTeleop, rollout  # noqa: E402

SIM = SimConfig(image_size=24)
EXPERT = ExpertConfig(bias_xy_sigma=0.0005, seed=4)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("demos") / "dataset"
    info = record_demos(path, 3, SIM, EXPERT, mode="critical", progress=False)
    return path, info


def _expected_episodes():
    """Replay what record_demos does: env seeds from demo_seed, one teleop generator for the dataset."""
    with PegInsertEnv(SIM) as env:
        teleop = ScriptedTeleop(env, EXPERT)
        return [list(rollout(env, teleop, demo_seed(EXPERT.seed, k), "critical")) for k in range(3)]


def test_recorded_episodes_read_back_equal(dataset):
    path, info = dataset
    demos = load_demos(path)
    assert len(demos) == 3 == info["episodes"] == info["attempts"]
    for demo, steps in zip(demos, _expected_episodes(), strict=True):
        duration = len(steps)
        assert demo.duration == duration and demo.instruction == TASK_INSTRUCTION
        assert demo.success == steps[-1].result.info["success"]
        for camera in SIM.cameras:
            assert demo.images[camera].dtype == np.uint8 and demo.images[camera].shape == (duration, 24, 24, 3)
            np.testing.assert_array_equal(demo.images[camera], np.stack([s.obs.images[camera] for s in steps]))
        assert demo.proprio.dtype == np.float32 and demo.actions.dtype == np.float32
        np.testing.assert_array_equal(demo.proprio, np.stack([s.obs.proprio for s in steps]))
        np.testing.assert_array_equal(demo.actions, np.stack([s.label for s in steps]).astype(np.float32))
        tips = np.array([[*s.tip_offset[:2], s.yaw_error] for s in steps], dtype=np.float32)
        np.testing.assert_array_equal(demo.tip_offset, tips)


def test_dataset_is_a_plain_rosbag(dataset):
    path, _ = dataset
    with BagReader(path) as bag:
        assert bag.topics == {
            camera_topic("front"): "sensor_msgs/msg/Image",
            camera_topic("wrist"): "sensor_msgs/msg/Image",
            JOINTS_TOPIC: "sensor_msgs/msg/JointState",
            ACTION_TOPIC: "rlt_msgs/msg/ActionChunk",
            TIP_TOPIC: "geometry_msgs/msg/Pose2D",
            EVENTS_TOPIC: "rlt_msgs/msg/EpisodeEvent",
        }
        events = [(stamp, msg) for _, stamp, msg in bag.messages([EVENTS_TOPIC])]
        stamps = [stamp for _, stamp, _ in bag.messages([JOINTS_TOPIC])]
        _, stamp, image = next(bag.messages([camera_topic("wrist")]))
        _, _, chunk = next(bag.messages([ACTION_TOPIC]))
        _, _, joints = next(bag.messages([JOINTS_TOPIC]))
    assert [m.event for _, m in events][::2] == [0, 0, 0]  # START, then SUCCESS (2) or TIMEOUT (4)
    assert {m.event for _, m in events[1::2]} <= {2, 4}
    assert [m.episode_id for _, m in events] == [0, 0, 1, 1, 2, 2]
    assert events[0][1].detail == TASK_INSTRUCTION
    assert all(a < b for a, b in itertools.pairwise(stamps))  # sim time only increases
    assert all(start <= end for (start, _), (end, _) in zip(events[::2], events[1::2], strict=True))
    assert (image.encoding, image.height, image.width, image.step) == ("rgb8", 24, 24, 72) and stamp == 0
    assert image.header.frame_id == "wrist"
    assert chunk.chunk_len == 1 and chunk.source == chunk.SOURCE_HUMAN
    assert chunk.axis_names == ["dx", "dy", "dz", "dyaw"]
    assert joints.name == ["x", "y", "z", "yaw", "pitch", "roll"] and len(joints.velocity) == 6


def test_dataset_metadata_holds_the_configs(dataset):
    path, info = dataset
    stored = read_dataset_info(path)
    assert stored == info
    assert stored["instruction"] == TASK_INSTRUCTION and stored["preset"] == "main" and stored["mode"] == "critical"
    assert SimConfig.from_dict(stored["sim_config"]) == SIM
    assert ExpertConfig.from_dict(stored["expert_config"]) == EXPERT
    assert stored["steps"] == sum(d.duration for d in load_demos(path))


def test_keep_success_drops_failed_attempts(tmp_path):
    sim = SimConfig(cameras=())
    info = record_demos(
        tmp_path / "ds",
        2,
        sim,
        ExpertConfig(bias_xy_sigma=0.0015, seed=3),
        mode="critical",
        keep="success",
        progress=False,
    )
    demos = load_demos(tmp_path / "ds")
    assert len(demos) == 2 and all(d.success for d in demos) and demos[0].images == {}
    assert info["attempts"] > info["episodes"] == 2  # this seed's expert fails some attempts
    with pytest.raises(RuntimeError, match=r"only 0 of 1 successful episodes after 10 attempts"):
        record_demos(
            tmp_path / "hopeless",
            1,
            sim,
            ExpertConfig(bias_xy_sigma=0.012),
            mode="critical",
            keep="success",
            progress=False,
        )


def test_bad_arguments_are_rejected(tmp_path, dataset):
    path, _ = dataset
    sim, expert = SimConfig(cameras=()), ExpertConfig()
    with pytest.raises(FileExistsError, match="exists; a dataset is written to a new folder"):
        record_demos(path, 1, sim, expert, progress=False)
    with pytest.raises(ValueError, match=r"keep='best': expected one of all, success"):
        record_demos(tmp_path / "a", 1, sim, expert, keep="best", progress=False)
    with pytest.raises(ValueError, match="unknown episode mode 'half'"):
        record_demos(tmp_path / "b", 1, sim, expert, mode="half", progress=False)
    with pytest.raises(ValueError, match="episodes=0: must be >= 1"):
        record_demos(tmp_path / "c", 0, sim, expert, progress=False)


def _descend(images: dict, proprio: np.ndarray) -> np.ndarray:
    """A chunking policy for the rollout tests: 10 steps straight down, 1 mm each, no lateral motion."""
    return np.tile(np.array([0.0, 0.0, -0.001, 0.0], dtype=np.float32), (10, 1))


def test_rollouts_store_the_policys_actions_and_execute_them_with_noise(tmp_path):
    sim = SimConfig(cameras=("wrist",), image_size=16)
    cfg = RolloutConfig(episodes=2, execute_steps=5, noise_xyz_sigma=0.0002, noise_yaw_sigma=0.002, seed=3,
                        finish_steps=0)
    info = record_rollouts(tmp_path / "noisy", _descend, sim, cfg, progress=False)
    assert info["episodes"] == 2 and RolloutConfig.from_dict(info["rollout_config"]) == cfg
    episodes = load_demos(tmp_path / "noisy")
    record_rollouts(tmp_path / "quiet", _descend, sim, cfg.replace(noise_xyz_sigma=0.0, noise_yaw_sigma=0.0),
                    progress=False)
    quiet = load_demos(tmp_path / "quiet")
    for noisy, clean in zip(episodes, quiet, strict=True):
        np.testing.assert_array_equal(noisy.actions, np.tile(_descend({}, noisy.proprio[0])[0], (noisy.duration, 1)))
        np.testing.assert_array_equal(noisy.proprio[0], clean.proprio[0])  # same start: seeds from demo_seed(3, k)
        steps = min(noisy.duration, clean.duration)
        assert np.abs(noisy.proprio[:steps, :2] - clean.proprio[:steps, :2]).max() > 1e-4  # the noise moved x/y
        assert np.abs(clean.proprio[:, :2] - clean.proprio[0, :2]).max() < 1e-4  # without it, straight down
    with PegInsertEnv(sim) as env:
        assert env.reset(demo_seed(3, 1), "critical").proprio.tolist() == episodes[1].proprio[0].tolist()
    with BagReader(tmp_path / "noisy") as bag:
        sources = {msg.source for _, _, msg in bag.messages([ACTION_TOPIC])}
    assert sources == {0}  # ActionChunk.SOURCE_VLA
    with pytest.raises(FileExistsError, match="exists; a dataset is written to a new folder"):
        record_rollouts(tmp_path / "noisy", _descend, sim, cfg, progress=False)


def test_an_operator_finishes_the_attempts_the_policy_left_at_the_time_limit(tmp_path):
    sim = SimConfig(cameras=("wrist",), image_size=16)
    cfg = RolloutConfig(episodes=3, execute_steps=5, seed=3, finish_steps=0)
    record_rollouts(tmp_path / "alone", _descend, sim, cfg, progress=False)
    alone = load_demos(tmp_path / "alone")
    info = record_rollouts(tmp_path / "finished", _descend, sim, cfg.replace(finish_steps=100), progress=False)
    finished = load_demos(tmp_path / "finished")
    failed = [k for k, episode in enumerate(alone) if not episode.success]
    assert failed and info["handovers"] == len(failed)  # straight down from a few mm off the axis mostly fails
    assert info["handover_successes"] >= 1 and info["successes_attempted"] == sum(e.success for e in finished)
    limit = sim.max_steps("critical")
    with BagReader(tmp_path / "finished") as bag:
        sources = [msg.source for _, _, msg in bag.messages([ACTION_TOPIC])]
    first = 0
    for policy, episode in zip(alone, finished, strict=True):
        own = sources[first:first + episode.duration]
        first += episode.duration
        if policy.success:  # untouched: the operator's generator is not the execution noise's
            np.testing.assert_array_equal(episode.proprio, policy.proprio)
            assert set(own) == {0}
            continue
        assert policy.duration == limit < episode.duration <= 2 * limit
        np.testing.assert_array_equal(episode.proprio[:limit], policy.proprio)  # the policy's part is unchanged
        assert own == [0] * limit + [2] * (episode.duration - limit)  # SOURCE_VLA, then SOURCE_HUMAN
    assert any(episode.success for k, episode in enumerate(finished) if k in failed)  # their final pose: a label


@pytest.mark.parametrize(("changes", "field"), [({"episodes": 0}, "episodes"), ({"mode": "half"}, "mode"),
                                                ({"noise_xyz_sigma": -1.0}, "noise_xyz_sigma"),
                                                ({"finish_steps": -1}, "finish_steps")])
def test_rollout_config_errors_name_the_field(changes, field):
    with pytest.raises(ValueError, match=field):
        RolloutConfig(**changes)
