"""A launched session (`rlt launch`, every node its own process) survives what other processes send and do:
it trains as the README shows it, keeps running through malformed input on every topic, and survives SIGKILLs of
its learner without losing or duplicating a transition."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import time

import numpy as np
import pytest
from rlt_msgs.msg import (
    ActionChunk,
    ChunkRequest,
    EpisodeEvent,
    PolicyWeights,
    SimState,
    Transition,
    VlaOutput,
)
from sensor_msgs.msg import Image, JointState, Joy

from rlt.types import Event, Source
from rlt_nodes import qos

pytestmark = [pytest.mark.ros, pytest.mark.sim]


def _learner_counts(text: str) -> list[int]:
    """The transition counts of the learner's periodic report lines."""
    return [int(n) for n in re.findall(r"\]: (\d+) transitions, ", text)]


def test_rlt_launch_sim_trains(ros, launch_session):
    """The README's `rlt launch sim`: the actor sizes itself on the model, so transitions reach the learner."""
    session = launch_session("sim")
    ros.spin_until(lambda: any(n > 0 for n in _learner_counts(session.log("learner"))), 120,
                   lambda: f"transitions at the learner\n{session.everything()}")
    assert "expects" not in session.log("actor"), session.log("actor")  # no VLA output dropped for its sizes
    assert session.proc.poll() is None, session.everything()


def test_rlt_launch_set_reaches_the_node_and_a_misspelt_name_stops_the_session(ros, launch_session):
    session = launch_session("sim", sets=("actor:rl.sigma=0.05", "learner:checkpoint_every_s=10"))
    ros.spin_until(lambda: "sigma 0.05," in session.log("actor"), 60,
                   lambda: f"the actor's sigma\n{session.everything()}")
    assert session.proc.poll() is None and "startup error" not in session.everything()  # 10 for a float: fine
    session.stop()
    typo = launch_session("sim", sets=("actor:sigma=0.05",))
    assert typo.proc.wait(timeout=60) == 1, typo.output()  # stopped at once, not respawned for ever
    assert ("actor failed at startup (exit 2): [ActorNode] startup error: node actor declares no parameter sigma "
            "(from -p actor:sigma:=0.05): did you mean rl.sigma?") in typo.output()


def _episode_ends(node, ends: list[int]) -> None:
    def on_event(msg: EpisodeEvent) -> None:
        if msg.event in (Event.SUCCESS, Event.FAILURE, Event.TIMEOUT):  # the raw value: the fuzzer sends bad ones
            ends.append(1)

    node.create_subscription(EpisodeEvent, "episode/events", on_event, qos.EVENTS)


def _malformed(stamp: object) -> dict[str, tuple[type, list[object]]]:
    """Per input topic: wrong messages of each kind (NaN, wrong length, zero rows, foreign sizes, bad enums)."""
    chunk = ActionChunk(chunk_len=2, action_dim=4, axis_names=["dx", "dy", "dz", "dyaw"], data=[0.0] * 8)
    chunk.header.stamp = stamp
    nan_chunk = ActionChunk(chunk_len=2, action_dim=4, axis_names=chunk.axis_names, data=[float("nan")] * 8)
    short = ActionChunk(chunk_len=2, action_dim=4, axis_names=chunk.axis_names, data=[0.0] * 5)
    empty = ActionChunk(chunk_len=0, action_dim=4, axis_names=chunk.axis_names, data=[])
    axes = ActionChunk(chunk_len=2, action_dim=4, axis_names=["a", "b", "c", "d"], data=[0.0] * 8)
    old = ActionChunk(chunk_len=2, action_dim=4, axis_names=chunk.axis_names, data=[0.0] * 8, chunk_id=1,
                      source=int(Source.ACTOR))  # an out-of-order id answering no pending request
    event = EpisodeEvent(event=250)
    request = ChunkRequest(executed=[0.1, 0.2, 0.3])
    good_request = ChunkRequest(axis_names=list(chunk.axis_names), episode_id=10**6)
    good_request.header.stamp = stamp
    output = VlaOutput(request=good_request, reference=chunk, rl_token=[1.0] * 77, proprio=[0.0] * 12,
                       model_id="another model")  # well formed, but another model's sizes
    nan_output = VlaOutput(request=good_request, reference=chunk, rl_token=[float("nan")] * 3, proprio=[0.0] * 12)
    newest = 2**62  # above every version a learner publishes: refused for what it holds, not for its number
    weights = PolicyWeights(version=newest, architecture="{not json")
    foreign_weights = PolicyWeights(version=newest, architecture='{"state_dim": 999}')
    transitions = [Transition(chunk_len=2, action_dim=4, rl_token=[float("nan")] * 3, proprio=[0.0] * 12,
                              action=[0.0] * 8, reference=[0.0] * 8, rewards=[0.0] * 2),
                   Transition(chunk_len=2, action_dim=4, rl_token=[0.0] * 3, proprio=[0.0] * 12, action=[0.0] * 3),
                   Transition(chunk_len=0, action_dim=0),
                   Transition(chunk_len=2, action_dim=4, rl_token=[0.0] * 40, proprio=[0.0] * 12,
                              action=[0.0] * 8, reference=[0.0] * 8, rewards=[0.0] * 2, next_rl_token=[0.0] * 40,
                              next_proprio=[0.0] * 12, next_reference=[0.0] * 8)]
    image = Image(height=16, width=16, encoding="rgb8", step=48, data=bytes(16 * 48 - 3))
    big = Image(height=8, width=8, encoding="rgb8", step=24, data=bytes(8 * 24))
    mono = Image(height=16, width=16, encoding="mono8", step=16, data=bytes(256))
    joints = JointState(name=["x"], position=[float("nan")])
    state = SimState(qpos=[float("nan")] * 3)
    joy = Joy(axes=[float("nan")] * 3, buttons=[1] * 40)
    return {
        "action_chunk": (ActionChunk, [nan_chunk, short, empty, axes, old]),
        "human/action_chunk": (ActionChunk, [nan_chunk, short, empty, axes]),
        "teleop/events": (EpisodeEvent, [event]),
        "episode/events": (EpisodeEvent, [event]),
        "chunk_request": (ChunkRequest, [request]),
        "vla/output": (VlaOutput, [output, nan_output]),
        "rl/actor_weights": (PolicyWeights, [weights, foreign_weights]),
        "rl/transitions": (Transition, transitions),
        "camera/front/image_raw": (Image, [image, big, mono]),
        "camera/wrist/image_raw": (Image, [image]),
        "joint_states": (JointState, [joints]),
        "sim/state": (SimState, [state]),
        "joy": (Joy, [joy]),
    }


# per receiving node and topic, the faults its log must name (the boundary logs each kind of fault on its own line)
RECEIVERS = {
    ("sim_driver", "action_chunk"): ["ActionChunk.data: non-finite", "ActionChunk.data: expected 8 values"],
    ("sim_driver", "teleop/events"): ["EpisodeEvent.event: unknown value 250"],
    ("actor", "human/action_chunk"): ["ActionChunk.data: non-finite", "ActionChunk.data: expected 8 values",
                                      "human ActionChunk of shape (0, 4)", "human ActionChunk.axis_names"],
    ("actor", "teleop/events"): ["EpisodeEvent.event: unknown value 250"],
    ("actor", "vla/output"): ["rl_token has shape (77,), this actor expects (3,)", "VlaOutput.rl_token: non-finite"],
    ("actor", "rl/actor_weights"): ["JSONDecodeError", "PolicyWeights.architecture: sender/receiver differ"],
    ("vla", "chunk_request"): ["ChunkRequest.axis_names: empty"],
    ("vla", "camera/front/image_raw"): ["765 bytes do not fit", "expected 'rgb8', got 'mono8'",
                                        "image (8, 8, 3), expected (16, 16, 3)"],
    ("vla", "camera/wrist/image_raw"): ["765 bytes do not fit"],
    ("learner", "rl/transitions"): ["Transition.rl_token: non-finite", "Transition.action: expected 8 values",
                                    "Transition.chunk_len/action_dim: must be > 0"],
    ("sim_camera", "sim/state"): ["SimState.qpos: expected a finite 1-D array"],
    ("sim_human", "sim/state"): ["SimState.qpos: expected a finite 1-D array"],
    ("sim_human", "episode/events"): ["EpisodeEvent.event: unknown value 250"],
    ("teleop", "joy"): ["Joy.axes: non-finite"],
}


def test_malformed_messages_on_every_topic_leave_every_node_running(ros, launch_session):
    session = launch_session("sim_human", {"learner": {"checkpoint_dir": ""}})
    node = ros.node("fuzzer")
    ends: list[int] = []
    _episode_ends(node, ends)
    ros.spin_until(lambda: len(ends) >= 1, 120, lambda: f"a first episode\n{session.everything()}")
    pids = {n: session.pid(n) for n in ("sim_driver", "sim_camera", "vla", "actor", "learner", "teleop", "sim_human")}
    assert all(pids.values()), pids
    stamp = node.get_clock().now().to_msg()
    publishers = []
    for topic, (kind, messages) in _malformed(stamp).items():
        pub = node.create_publisher(kind, topic, qos.EVENTS)  # reliable + transient local: matches every reader
        publishers.append((pub, messages))
    for pub, _ in publishers:
        ros.spin_until(lambda p=pub: p.get_subscription_count() > 0, 30, f"a subscriber of {pub.topic_name}")
    for _ in range(3):  # each kind three times: logged once with a count, never once per message
        for pub, messages in publishers:
            for msg in messages:
                pub.publish(msg)
                pause = time.monotonic() + 0.02  # a depth-1 reader (rl/actor_weights) keeps only the latest
                ros.spin_until(lambda p=pause: time.monotonic() > p, 5, "a pause")
    before = len(ends)
    ros.spin_until(lambda: len(ends) >= before + 2, 120,
                   lambda: f"episodes after the garbage\n{session.everything()}")
    assert {n: session.pid(n) for n in pids} == pids, f"a node died\n{session.everything()}"
    assert "respawning" not in session.output(), session.output()
    for (name, topic), faults in RECEIVERS.items():
        lines = [line for line in session.log(name).splitlines() if f"dropped a message on /{topic} " in line]
        for fault in faults:  # each kind named once: three of each were sent, the repeats are counted, not logged
            named = [line for line in lines if fault in line]
            assert len(named) == 1, f"{name} on {topic}: {fault!r} in {len(named)} lines\n" + "\n".join(lines)
            assert re.search(r"\(1 dropped\)", named[0]), named[0]
    for name in pids:
        assert "Traceback" not in session.log(name), session.log(name)[-3000:]
    assert session.stop() == 130, session.output()  # stopped by Ctrl-C, and every node exited cleanly


def test_sigkill_of_the_learner_loses_and_duplicates_nothing(ros, launch_session, tmp_path):
    from rlt.rl.config import RLConfig
    from rlt.rl.learner import Learner

    checkpoints = tmp_path / "learner"
    session = launch_session("sim", {"learner": {"checkpoint_dir": str(checkpoints), "checkpoint_every_s": 2},
                                     "/**": {"rl.buffer_capacity": 20000}})
    node = ros.node("observer")
    sent: dict[tuple[int, int], np.ndarray] = {}  # every transition the actor published, by (episode, step)
    published: list[int] = []  # the weights versions the learners published, in order
    acting: list[int] = []  # the versions the actor acted with (its ACTOR chunks)

    def on_transition(msg: Transition) -> None:
        sent[(msg.episode_id, msg.step)] = np.array(msg.rl_token, np.float32)

    def on_chunk(msg: ActionChunk) -> None:
        if msg.source == int(Source.ACTOR):
            acting.append(msg.policy_version)

    node.create_subscription(Transition, "rl/transitions", on_transition, qos.REPLAY)
    node.create_subscription(ActionChunk, "action_chunk", on_chunk, qos.CONTROL)
    node.create_subscription(PolicyWeights, "rl/actor_weights", lambda m: published.append(m.version), qos.LATCHED)
    before_kill: list[int] = []  # the newest published version before each kill
    rng = random.Random(int(os.environ.get("ROS_DOMAIN_ID", "0")))
    for kill in range(3):
        # the learner of this round has resumed and received transitions since
        ros.spin_until(lambda k=kill: session.log("learner").count("resumed from") == k + 1, 120,
                       lambda k=kill: f"learner start {k + 1}\n{session.everything()}")
        count = len(sent)
        ros.spin_until(lambda c=count: len(sent) > c + 30, 120,
                       lambda k=kill: f"transitions before kill {k}\n{session.everything()}")
        deadline = time.monotonic() + rng.uniform(0.0, 8.0)  # a random moment: mid-update, mid-checkpoint, idle
        ros.spin_until(lambda d=deadline: time.monotonic() > d, 10, "the moment")
        pid = session.pid("learner")
        before_kill.append(max(published, default=0))
        os.kill(pid, signal.SIGKILL)
        ros.spin_until(lambda p=pid: session.pid("learner") not in (None, p), 60,
                       lambda: f"the respawned learner\n{session.everything()}")
    ros.spin_until(lambda: session.log("learner").count("resumed from") == 4, 120, "the last learner's start")
    count = len(sent)
    ros.spin_until(lambda: len(sent) > count + 20 and max(acting, default=0) > before_kill[-1], 120,
                   lambda: f"transitions and newer weights after the last restart\n{session.everything()}")
    # pause the producer, let the learner take in everything in flight, then stop the session (final checkpoint)
    os.kill(session.pid("sim_driver"), signal.SIGSTOP)
    time.sleep(0.2)
    quiet = {"n": -1, "since": time.monotonic()}

    def settled() -> bool:
        if len(sent) != quiet["n"]:
            quiet["n"], quiet["since"] = len(sent), time.monotonic()
        return time.monotonic() - quiet["since"] > 2.0

    ros.spin_until(settled, 30, "the last transitions")
    # the learner has taken in everything in flight when its periodic report (every 5 s) counts all of it
    ros.spin_until(lambda: _learner_counts(session.log("learner"))[-1:] == [len(sent)], 60,
                   lambda: f"the learner holding all {len(sent)} transitions\n{session.everything()}")
    os.kill(session.pid("sim_driver"), signal.SIGKILL)  # the required node: the session stops, nothing more is sent
    session.stop()
    assert session.output().count("learner exited with -9") == 3, session.output()
    # each respawned learner numbered its weights after every version published before it died, and the actor
    # acted with them: never an older policy as newer, never a newer one ignored
    assert published == sorted(published) and len(set(published)) == len(published), published
    assert acting == sorted(acting) and acting[-1] > before_kill[-1]
    meta = json.loads((checkpoints / (checkpoints / "LATEST").read_text().strip() / "meta.json").read_text())
    learner = Learner(RLConfig.from_dict(meta["config"]))  # the session's, sizes from the model included
    summary = learner.resume(checkpoints)
    keys = [tuple(k) for k in learner.buffer.keys().tolist()]
    assert len(keys) == len(set(keys)), f"duplicated transitions in the learner: {summary}"
    assert set(keys) == set(sent), (f"lost {len(set(sent) - set(keys))}, foreign {len(set(keys) - set(sent))}; "
                                    f"{summary}\n{session.everything()}")
