"""rlt.bags.recorder and rlt.bags.player without ROS: read back equal, bounded queue, crash + repair, replay timing."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from rlt.bags.io import BagReader, BagWriter, TopicQos, header, make_typestore, repair_bag, time_msg
from rlt.bags.player import BagPlayer, PlayerConfig
from rlt.bags.recorder import STATS_KEY, BagRecorder, RecorderConfig, TopicFilter


@pytest.fixture(scope="module")
def store():
    return make_typestore()


def samples(store, n=30):
    """(topic, msgtype, cdr bytes) of a small session: images, a custom nested type, a Joy, an event."""
    t = store.types
    out = []
    for i in range(n):
        image = t["sensor_msgs/msg/Image"](
            header=header(store, i * 50_000_000, "front"), height=4, width=3, encoding="rgb8", is_bigendian=0,
            step=9, data=np.full(36, i, np.uint8),
        )
        out.append(("/camera/front/image_raw", "sensor_msgs/msg/Image", image))
        chunk = t["rlt_msgs/msg/ActionChunk"](
            header=header(store, i), chunk_id=i, source=2, policy_version=-1, vla_stamp=time_msg(store, 0),
            sent_stamp=time_msg(store, i), axis_names=["dx", "dy"], chunk_len=2,
            data=np.arange(4, dtype=np.float32) * i,
        )
        out.append(("/human/action_chunk", "rlt_msgs/msg/ActionChunk", chunk))
        if i % 3 == 0:
            joy = t["sensor_msgs/msg/Joy"](header=header(store, i), axes=np.array([0.5, -1.0], np.float32),
                                           buttons=np.array([1, 0, i], np.int32))
            out.append(("/joy", "sensor_msgs/msg/Joy", joy))
    return [(topic, msgtype, bytes(store.serialize_cdr(msg, msgtype))) for topic, msgtype, msg in out]


def test_record_reads_back_every_message_equal(tmp_path, store):
    msgs = samples(store)
    recorder = BagRecorder(tmp_path / "bag", RecorderConfig(flush_every_s=0.05))
    qos = {"/camera/front/image_raw": TopicQos(reliable=True, transient_local=True, depth=50)}
    for topic, msgtype in {(t, m) for t, m, _ in msgs}:
        recorder.add_topic(topic, msgtype, qos.get(topic, TopicQos(reliable=False)))
    for i, (topic, _, raw) in enumerate(msgs):
        assert recorder.put(topic, raw)
        if i == len(msgs) // 2:
            time.sleep(0.12)  # let a periodic flush happen mid-recording
    summary = recorder.stop()
    assert summary["messages"] == len(msgs) and summary["dropped"] == 0 and summary["flushes"] >= 1
    assert summary["megabytes"] == pytest.approx(sum(len(r) for _, _, r in msgs) / 1e6, abs=1e-3)
    with BagReader(tmp_path / "bag", store) as bag:
        assert bag.message_count == len(msgs)
        assert bag.qos["/camera/front/image_raw"] == TopicQos(True, True, 50)
        assert bag.qos["/joy"] == TopicQos(reliable=False)
        assert bag.type_hashes["/human/action_chunk"] == store.hash_rihs01("rlt_msgs/msg/ActionChunk")
        raw = list(bag.raw_messages())
        assert [(t, r) for t, _, r in raw] == [(t, r) for t, _, r in msgs]  # same order, same bytes
        stamps = [s for _, s, _ in raw]
        assert stamps == sorted(stamps)  # receive times, never going backwards
        decoded = [m for _, _, m in bag.messages(["/human/action_chunk"])]
        assert [m.chunk_id for m in decoded] == list(range(30)) and decoded[7].data.tolist() == [0, 7, 14, 21]
        stats = json.loads(bag.metadata[STATS_KEY])
        assert stats["topics"]["/joy"]["messages"] == 10


def test_queue_is_bounded_in_bytes_and_drops_are_counted(tmp_path, store):
    recorder = BagRecorder(tmp_path / "bag", RecorderConfig(queue_mb=0.001))  # 1000 bytes
    recorder.add_topic("/big", "std_msgs/msg/String")
    big = bytes(store.serialize_cdr(store.types["std_msgs/msg/String"](data="x" * 2000), "std_msgs/msg/String"))
    small = bytes(store.serialize_cdr(store.types["std_msgs/msg/String"](data="y"), "std_msgs/msg/String"))
    assert not recorder.put("/big", big) and recorder.put("/big", small)
    summary = recorder.stop()
    assert summary["dropped"] == 1 and summary["messages"] == 1 and summary["queue_peak_mb"] <= 0.001


def test_topic_filter_resolves_relative_patterns_in_the_namespace():
    filt = TopicFilter(RecorderConfig(topics=("camera/*/image_raw", "/clock"), exclude=("*/wrist/*",)), "/robot1")
    assert filt.wants("/robot1/camera/front/image_raw") and filt.wants("/clock")
    assert not filt.wants("/camera/front/image_raw") and not filt.wants("/robot1/camera/wrist/image_raw")
    everything = TopicFilter(RecorderConfig(all_topics=True, exclude=("/rosout",)))
    assert everything.wants("/anything") and not everything.wants("/rosout")


CRASH = """
import os, signal, sys, time
from rlt.bags.io import make_typestore
from rlt.bags.recorder import BagRecorder, RecorderConfig
store = make_typestore()
rec = BagRecorder(sys.argv[1], RecorderConfig(flush_every_s=0.05))
rec.add_topic("/n", "std_msgs/msg/Int64")
def put(i):
    rec.put("/n", bytes(store.serialize_cdr(store.types["std_msgs/msg/Int64"](data=i), "std_msgs/msg/Int64")))
for i in range(200):
    put(i)
while rec.stats.flushes < 1 or rec.stats.messages < 200:
    time.sleep(0.01)
time.sleep(0.06)  # the writer loop flushed after writing all 200
print("flushed", flush=True)
for i in range(200, 260):
    put(i)  # written or not: lost with the crash unless flushed
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_crash_leaves_a_bag_readable_up_to_the_last_flush(tmp_path, store):
    bag = tmp_path / "crashed"
    result = subprocess.run([sys.executable, "-c", CRASH, str(bag)], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert result.returncode == -signal.SIGKILL and "flushed" in result.stdout, result.stderr
    assert not (bag / "metadata.yaml").exists()
    with pytest.raises(FileNotFoundError, match="rlt bag repair"):
        BagReader(bag, store)
    report = repair_bag(bag, store)
    assert report.messages >= 200
    with BagReader(bag, store) as reader:
        values = [m.data for _, _, m in reader.messages()]
        assert "repaired" in reader.metadata
    assert values == list(range(len(values)))  # every message up to the last flush, in order, none invented
    assert repair_bag(bag, store) is None  # complete now


def synthetic_bag(path, store, with_clock=False):
    """Messages at irregular recorded times over ~0.6 s: gaps from 0.5 to 40 ms."""
    rng = np.random.default_rng(0)
    gaps = rng.choice([500_000, 3_000_000, 10_000_000, 40_000_000], size=60)
    stamps = 10**18 + np.cumsum(gaps)
    int64 = store.types["std_msgs/msg/Int64"]
    with BagWriter(path, store) as bag:
        bag.add_topic("/a", "std_msgs/msg/Int64")
        bag.add_topic("/b", "std_msgs/msg/Int64", TopicQos(reliable=False))
        if with_clock:
            bag.add_topic("/clock", "rosgraph_msgs/msg/Clock")
        for i, stamp in enumerate(stamps):
            bag.write("/a" if i % 3 else "/b", int(stamp), int64(data=i))
    return stamps


def test_player_keeps_the_recorded_timing(tmp_path, store):
    stamps = synthetic_bag(tmp_path / "bag", store)
    player = BagPlayer(PlayerConfig(bag=str(tmp_path / "bag")))
    assert player.topics["/b"][1] == TopicQos(reliable=False) and player.publishes_clock
    sent, clocks = [], []
    stats = player.run(lambda topic, raw: sent.append((time.perf_counter_ns(), topic, raw)), threading.Event(),
                       clocks.append)
    assert stats.messages == len(stamps) == len(sent) and clocks == [int(s) for s in stamps]
    offset = np.array([t for t, _, _ in sent]) - stamps  # publish time minus recorded time
    error_ms = np.abs(offset - np.median(offset)) / 1e6
    assert np.median(error_ms) < 2.0, error_ms
    assert stats.summary()["lateness_p50_ms"] < 2.0
    assert [store.deserialize_cdr(raw, "std_msgs/msg/Int64").data for _, _, raw in sent] == list(range(len(stamps)))


def test_player_rate_selection_and_stop(tmp_path, store):
    stamps = synthetic_bag(tmp_path / "bag", store, with_clock=False)
    fast = BagPlayer(PlayerConfig(bag=str(tmp_path / "bag"), rate=0.0, topics=("/b",), clock=False))
    got = []
    stats = fast.run(lambda topic, raw: got.append(topic), threading.Event())
    assert got == ["/b"] * len(stamps[::3]) and stats.wall_s < 0.5 and not fast.publishes_clock
    double = BagPlayer(PlayerConfig(bag=str(tmp_path / "bag"), rate=2.0, exclude=("/b",)))
    stats = double.run(lambda topic, raw: None, threading.Event())
    assert stats.wall_s == pytest.approx((stamps[-1] - stamps[1]) / 2e9, abs=0.03)
    stop = threading.Event()
    stop.set()
    assert BagPlayer(PlayerConfig(bag=str(tmp_path / "bag"))).run(lambda t, r: None, stop).messages == 0
    with pytest.raises(ValueError, match="select none"):
        BagPlayer(PlayerConfig(bag=str(tmp_path / "bag"), topics=("/nothing",)))
    with pytest.raises(ValueError, match=r"PlayerConfig\.bag is required"):
        BagPlayer(PlayerConfig())


def test_cli_info_and_repair(tmp_path, store, capsys):
    from rlt import cli

    msgs = samples(store, n=3)
    recorder = BagRecorder(tmp_path / "bag", RecorderConfig())
    for topic, msgtype in sorted({(t, m) for t, m, _ in msgs}):
        recorder.add_topic(topic, msgtype)
    for topic, _, raw in msgs:
        recorder.put(topic, raw)
    recorder.stop()
    assert cli.main(["bag", "info", str(tmp_path / "bag")]) == 0
    out = capsys.readouterr().out
    assert f"{len(msgs)} messages" in out and store.hash_rihs01("rlt_msgs/msg/ActionChunk") in out
    assert "/human/action_chunk" in out and "0 dropped" in out
    assert cli.main(["bag", "repair", str(tmp_path / "bag")]) == 0
    assert "nothing to repair" in capsys.readouterr().out
    assert cli.main(["bag", "info", str(tmp_path / "nope")]) == 2  # one clear error line
