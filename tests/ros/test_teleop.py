"""Joystick intervention through ROS: the teleop node on literal Joy messages, the joystick node without a gamepad,
and a sim session in which the scripted human intervenes: the learner's replay buffer holds intervened transitions
whose reference ã is the human's executed chunk."""

import json

import numpy as np
import pytest
from rlt_msgs.msg import ActionChunk, EpisodeEvent, Transition
from sensor_msgs.msg import Joy

from rlt.rl.replay import RowLayout
from rlt.types import Event, Source
from rlt.types import Joy as JoyState
from rlt_nodes import convert, qos

pytestmark = pytest.mark.ros


def test_teleop_node_maps_joy_to_human_chunks_and_events(ros, spawn):
    node = ros.node("gamepad")
    chunks, events = [], []
    subs = [node.create_subscription(ActionChunk, "human/action_chunk",
                                     lambda m: chunks.append(convert.chunk_from_msg(m)), qos.CONTROL),
            node.create_subscription(EpisodeEvent, "teleop/events", lambda m: events.append(convert.event_from_msg(m)),
                                     qos.CONTROL)]
    pub = node.create_publisher(Joy, "joy", qos.JOY)
    spawn("teleop", {"mapping": "ps4", "rl.chunk_len": 5, "rl.stride": 5, "teleop.rate_hz": 1.0})
    # matched both ways: the first event is sent once, so it is lost if this node's reader is not matched yet
    ros.spin_until(lambda: pub.get_subscription_count() > 0 and all(s.get_publisher_count() > 0 for s in subs), 30,
                   "the teleop node")
    held = [0] * 13
    held[4] = 1  # L1: the dead-man of the ps4 mapping
    axes = np.zeros(8, np.float32)
    axes[1] = 1.0  # left stick fully up: +dx at full scale
    pub.publish(convert.joy_to_msg(JoyState(axes, tuple(held), 1_000)))
    ros.spin_until(lambda: chunks and events, 10, "the human chunk")
    chunk = chunks[0]
    assert chunk.source is Source.HUMAN and chunk.stamp_ns > 0 and chunk.data.shape == (5, 4)
    np.testing.assert_allclose(chunk.data, np.tile([0.004, 0, 0, 0], (5, 1)), rtol=1e-6)
    released = [0] * 13
    released[9] = 1  # options: reset
    pub.publish(convert.joy_to_msg(JoyState(np.zeros(8), tuple(released), 2_000)))
    ros.spin_until(lambda: len(events) >= 3, 10, "the operator events")
    assert [e.event for e in events] == [Event.INTERVENE_BEGIN, Event.RESET, Event.INTERVENE_END]
    # stamped with the teleop node's clock: the begin with its chunk, the release after it
    assert events[0].stamp_ns == chunk.stamp_ns < events[1].stamp_ns == events[2].stamp_ns


def test_joystick_node_without_a_gamepad_stops_with_a_clear_error(ros, spawn, tmp_path):
    node = spawn("joystick", {"joystick.device": str(tmp_path / "event99")})
    assert node.proc.wait(timeout=30) == 2
    assert "startup error" in node.output() and "event99" in node.output()


SIM = {"sim.image_size": 32, "sim.critical_episode_seconds": 2.0}
RL = {"rl.token_dim": 64, "rl.hidden": "[32, 32]", "rl.learning_starts": 8, "rl.batch_size": 8, "rl.num_threads": 1,
      "rl.warmup_episodes": 0, "rl.buffer_capacity": 1000}


def test_scripted_human_interventions_reach_the_replay_buffer(ros, spawn, tmp_path):
    node = ros.node("observer")
    human_rows, transitions = [], []
    node.create_subscription(
        ActionChunk, "human/action_chunk", lambda m: human_rows.extend(convert.chunk_from_msg(m).data), qos.CONTROL
    )
    node.create_subscription(
        Transition, "rl/transitions", lambda m: transitions.append(convert.transition_from_msg(m)), qos.REPLAY
    )
    learner_dir = tmp_path / "learner"
    learner = spawn("learner", {**RL, "checkpoint_dir": str(learner_dir)})
    actor = spawn("actor", {**RL, "actor.mode": "train", "use_sim_time": True})
    spawn("vla", {"fake": True, "image_size": 32, "use_sim_time": True})
    spawn("sim_camera", SIM)
    spawn("teleop", {"mapping": "xbox", "use_sim_time": True})
    human = {**SIM, "human.every": 2, "human.offset": 0, "human.trigger": "schedule",
             "human.start_step": 2, "human.duration_steps": 20}
    spawn("sim_human", human)
    ros.spin_until(
        lambda: node.count_subscribers("human/action_chunk") >= 2  # the actor and this observer
        and node.count_publishers("human/action_chunk") >= 1
        and node.count_subscribers("joy") >= 1
        and node.count_publishers("joy") >= 1
        and node.count_subscribers("sim/state") >= 2  # camera and scripted human
        and node.count_subscribers("rl/transitions") >= 2,
        60,
        "the teleop path and the session's nodes",
    )
    # as the sim_human session: the driver waits until the camera and the scripted human follow sim/state
    driver = spawn("sim_driver", {**SIM, "driver.mode": "critical", "driver.episodes": 3, "driver.seed": 5,
                                  "state_subscribers": 2})
    ros.spin_until(lambda: driver.proc.poll() is not None, 120, "the three episodes")
    assert driver.proc.returncode == 0, driver.output() + actor.output()
    assert learner.stop() == 0, learner.output()  # saves its checkpoint, replay buffer included

    folder = learner_dir / (learner_dir / "LATEST").read_text().strip()
    with np.load(folder / "replay.npz") as f:
        header = json.loads(f["header"].tobytes().decode())
        rows = f["rows"]
    layout = RowLayout(64 + 12, 10, 4)
    ros.spin_until(lambda: len(transitions) >= len(rows) > 0, 10, "the transitions the learner stored")
    assert len(rows) == len(transitions)  # the learner stored everything the actor sent
    intervened = rows[:, layout.intervened] == 1.0
    assert 0 < intervened.sum() < len(rows), "some, not all, transitions come from the human"
    action, reference = rows[:, layout.action], rows[:, layout.reference]
    np.testing.assert_array_equal(reference[intervened], action[intervened])  # ã := a_human
    # the executed rows of intervened samples are rows of chunks the teleop node published (normalized units)
    scale = np.asarray(header["units"]["action_scale"], np.float32)
    human = {tuple(np.round(np.asarray(r) / scale, 5)) for r in human_rows}
    all_human = [
        all(tuple(np.round(r, 5)) in human for r in a.reshape(10, 4)) for a in action[intervened]
    ]
    assert sum(all_human) >= 1, "no intervened transition is made of human chunk rows only"
    print(f"{len(rows)} transitions, {intervened.sum()} intervened, {sum(all_human)} of human rows only")
    # and the actor's own samples are not marked: their rows are not the human's
    assert not any(all(tuple(np.round(r, 5)) in human for r in a.reshape(10, 4)) for a in action[~intervened])
    episodes = {t.episode_id for t in transitions if t.intervened}
    assert episodes <= {0, 2}, episodes  # the human's episodes only
