"""bag_recorder and bag_player as processes: every message recorded equal and decodable with the generated rlt_msgs
types, rosidl's type hashes in the bag, replay at recorded timing with /clock."""

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from rclpy.serialization import deserialize_message
from rlt_msgs.msg import ActionChunk, EpisodeEvent, Transition, VlaOutput
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, Joy
from std_msgs.msg import Int64

from rlt.bags.io import BagReader, BagWriter, TopicQos, make_typestore
from rlt.types import ActionChunk as Chunk
from rlt.types import ChunkRequest, Event, Source
from rlt.types import EpisodeEvent as Ev
from rlt.types import Joy as JoyState
from rlt.types import Transition as Tr
from rlt.types import VlaOutput as Out
from rlt_nodes import convert, qos

pytestmark = pytest.mark.ros
AXES = ("dx", "dy", "dz", "dyaw")


def messages(n: int) -> dict[str, list]:
    """A few of everything a session publishes, with distinct contents."""
    rng = np.random.default_rng(1)
    out: dict[str, list] = {"/camera/front/image_raw": [], "/camera/wrist/image_raw": [], "/vla/output": [],
                            "/human/action_chunk": [], "/rl/transitions": [], "/joy": [], "/episode/events": []}
    for i in range(n):
        stamp = 10**9 + i * 50_000_000
        for cam in ("front", "wrist"):
            image = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
            out[f"/camera/{cam}/image_raw"].append(convert.image_to_msg(image, "rgb8", stamp, cam))
        req = ChunkRequest(3, i, AXES, executed=rng.normal(size=(2, 4)), sources=(Source.ACTOR, Source.HUMAN),
                           rewards=np.zeros(2), stamp_ns=stamp)
        ref = Chunk(rng.normal(size=(10, 4)) * 1e-3, AXES, Source.VLA, i, stamp)
        out["/vla/output"].append(convert.vla_output_to_msg(Out(req, ref, rng.normal(size=64), rng.normal(size=12),
                                                                "m", stamp)))
        out["/human/action_chunk"].append(convert.chunk_to_msg(Chunk(np.full((10, 4), i * 1e-4), AXES, Source.HUMAN,
                                                                     i, stamp)))
        a = rng.normal(size=(10, 4)).astype(np.float32)
        out["/rl/transitions"].append(convert.transition_to_msg(Tr(
            rng.normal(size=64), rng.normal(size=12), a, a, np.zeros(10), False, True, rng.normal(size=64),
            rng.normal(size=12), rng.normal(size=(10, 4)), 3, i, stamp)))
        out["/joy"].append(convert.joy_to_msg(JoyState(rng.uniform(-1, 1, 8), tuple(rng.integers(0, 2, 11)), stamp)))
        if i % 5 == 0:
            out["/episode/events"].append(convert.event_to_msg(Ev(Event.INTERVENE_BEGIN, 3, i, "b", stamp)))
    return out


TYPES = {
    "/camera/front/image_raw": (Image, qos.LOCKSTEP),
    "/camera/wrist/image_raw": (Image, qos.LOCKSTEP),
    "/vla/output": (VlaOutput, qos.VLA_OUTPUT),
    "/human/action_chunk": (ActionChunk, qos.CONTROL),
    "/rl/transitions": (Transition, qos.REPLAY),
    "/joy": (Joy, qos.JOY),
    "/episode/events": (EpisodeEvent, qos.EVENTS),
}


def rosidl_hash(msgtype: str) -> str:
    package, _, name = msgtype.split("/")
    for prefix in os.environ["AMENT_PREFIX_PATH"].split(os.pathsep):
        path = Path(prefix) / "share" / package / "msg" / f"{name}.json"
        if path.is_file():
            hashes = json.loads(path.read_text())["type_hashes"]
            return next(h["hash_string"] for h in hashes if h["type_name"] == msgtype)
    raise FileNotFoundError(msgtype)


def test_recorder_stores_every_message_equal_and_decodable(ros, spawn, tmp_path):
    node = ros.node("session_stand_in")
    pubs = {topic: node.create_publisher(cls, topic, profile) for topic, (cls, profile) in TYPES.items()}
    recorder = spawn("bag_recorder", {"recorder.out": str(tmp_path / "bag"), "recorder.flush_every_s": 0.2})
    ros.spin_until(lambda: all(p.get_subscription_count() > 0 for p in pubs.values()), 30,
                   "the recorder's subscriptions")
    sent = messages(40)
    for i in range(40):
        for topic, msgs in sent.items():
            if i < len(msgs):
                pubs[topic].publish(msgs[i])
        ros.executor.spin_once(timeout_sec=0.005)  # pace the burst a little, as a session would
    assert recorder.stop() == 0, recorder.output()
    assert "0 dropped" in recorder.output()
    store = make_typestore()
    with BagReader(tmp_path / "bag", store) as bag:
        recorded = {topic: [] for topic in sent}
        for topic, _, raw in bag.raw_messages():
            recorded.setdefault(topic, []).append(raw)
        for topic, msgs in sent.items():
            cls = TYPES[topic][0]
            got = [deserialize_message(raw, cls) for raw in recorded[topic]]
            assert got == msgs, topic  # every message, in order, equal field by field
            # the type hash the bag stores is the one rosidl generated for the installed type
            assert bag.type_hashes[topic] == rosidl_hash(bag.topics[topic]), topic
        assert bag.qos["/vla/output"].transient_local and not bag.qos["/human/action_chunk"].transient_local
        # the same bytes decode with the typestore registered from the .msg files (Foxglove / rosbags view)
        first = next(m for _, _, m in bag.messages(["/vla/output"]))
        assert first.request.sources.tolist() == [1, 2] and first.rl_token.shape == (64,)


def test_player_replays_at_recorded_timing_with_sim_time(ros, spawn, tmp_path):
    store = make_typestore()
    rng = np.random.default_rng(2)
    stamps = 1_700_000_000 * 10**9 + np.cumsum(rng.choice([1, 4, 10, 25], size=120) * 1_000_000)
    with BagWriter(tmp_path / "bag", store) as bag:
        bag.add_topic("/count", "std_msgs/msg/Int64")
        for i, stamp in enumerate(stamps):
            bag.write("/count", int(stamp), store.types["std_msgs/msg/Int64"](data=i))
    node = ros.node("listener")
    received, clock = [], []
    node.create_subscription(Int64, "/count", lambda m: received.append((time.perf_counter_ns(), m.data)),
                             qos.replaying(TopicQos()))
    node.create_subscription(Clock, "/clock", lambda m: clock.append(convert.stamp_to_ns(m.clock)), qos.STATE)
    player = spawn("bag_player", {"player.bag": str(tmp_path / "bag"), "player.wait_for": "['/count', '/clock']"})
    ros.spin_until(lambda: len(received) == len(stamps), 30, "the replayed messages")
    assert [v for _, v in received] == list(range(len(stamps)))
    # timing error: arrival minus recorded time, around the typical offset (a constant delay is not an error;
    # anchoring on the first message alone would count its one-off first-publish latency against every other)
    offset = np.array([t for t, _ in received]) - stamps
    error_ms = np.abs(offset - np.median(offset)) / 1e6
    p50, p99 = np.percentile(error_ms, [50, 99])
    assert p50 < 2.0, f"replay timing error p50 {p50:.2f} ms, p99 {p99:.2f} ms"
    print(f"replay timing error: p50 {p50:.3f} ms, p99 {p99:.3f} ms")
    ros.spin_until(lambda: len(clock) == len(stamps), 10, "/clock")
    assert clock == [int(s) for s in stamps]  # sim time = the recorded log time
    assert player.proc.wait(timeout=20) == 0, player.output()
    assert "lateness p50" in player.output()
