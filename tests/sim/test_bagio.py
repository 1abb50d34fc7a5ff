"""rlt.bags.io: the rlt_msgs typestore, MCAP bag round trips, RIHS01 type hashes, custom metadata, errors."""

import re
import shutil

import numpy as np
import pytest
from ruamel.yaml import YAML

from rlt.bags.io import MSGS_DIR_ENV, BagReader, BagWriter, find_msg_dir, header, make_typestore, time_msg

# The hash ROS 2 itself publishes for std_msgs/msg/String (REP 2011 type description hash).
STRING_RIHS01 = "RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18"
RIHS01 = re.compile(r"^RIHS01_[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def store():
    return make_typestore()


def test_typestore_has_ros_and_project_types(store):
    msg_names = {p.stem for p in find_msg_dir().glob("*.msg")}
    assert {"ActionChunk", "EpisodeEvent", "PolicyWeights", "Tensor", "VlaOutput"} <= msg_names
    for name in msg_names:
        assert f"rlt_msgs/msg/{name}" in store.types
    assert "sensor_msgs/msg/Image" in store.types and "geometry_msgs/msg/Pose2D" in store.types
    assert store.hash_rihs01("std_msgs/msg/String") == STRING_RIHS01
    for name in msg_names:  # nested project types (ActionChunk in VlaOutput, Tensor in PolicyWeights) resolve
        assert RIHS01.match(store.hash_rihs01(f"rlt_msgs/msg/{name}"))


def test_round_trip_with_nested_types_hashes_and_metadata(tmp_path, store):
    types = store.types
    chunk_cls, tensor_cls = types["rlt_msgs/msg/ActionChunk"], types["rlt_msgs/msg/Tensor"]
    chunk = chunk_cls(
        header=header(store, 5, "base"),
        chunk_id=9,
        source=chunk_cls.SOURCE_HUMAN,
        policy_version=-1,
        vla_stamp=time_msg(store, 0),
        sent_stamp=time_msg(store, 7),
        axis_names=["dx", "dy"],
        chunk_len=2,
        data=np.arange(4, dtype=np.float32),
    )
    weights = types["rlt_msgs/msg/PolicyWeights"](
        header=header(store, 6),
        version=3,
        learner_step=100,
        architecture="{}",
        tensors=[tensor_cls(name="w", shape=np.array([2], np.uint32), data=np.ones(2, np.float32))],
    )
    topics = {
        "chatter": "std_msgs/msg/String",
        "action": "rlt_msgs/msg/ActionChunk",
        "weights": "rlt_msgs/msg/PolicyWeights",
    }
    path = tmp_path / "bag"
    with BagWriter(path, store) as bag:
        for topic, msgtype in topics.items():
            bag.add_topic(topic, msgtype)
        bag.write("chatter", 2, types["std_msgs/msg/String"](data="hi"))
        bag.write("action", 5, chunk)
        bag.write("weights", 3_000_000_001, weights)
        bag.set_metadata("note", "hello")
    assert sorted(p.name for p in path.iterdir()) == ["bag.mcap", "metadata.yaml"]
    assert b"zstd" in (path / "bag.mcap").read_bytes()  # chunk compression

    with BagReader(path, store) as bag:
        assert bag.topics == topics
        assert bag.metadata == {"note": "hello"}
        assert bag.type_hashes["chatter"] == STRING_RIHS01
        for topic, msgtype in bag.topics.items():
            assert bag.type_hashes[topic] == store.hash_rihs01(msgtype)
        messages = list(bag.messages())
        assert [(t, s) for t, s, _ in messages] == [("chatter", 2), ("action", 5), ("weights", 3_000_000_001)]
        read_chunk, read_weights = messages[1][2], messages[2][2]
        assert read_chunk.axis_names == ["dx", "dy"] and read_chunk.source == 2 and read_chunk.header.stamp.nanosec == 5
        np.testing.assert_array_equal(read_chunk.data, chunk.data)
        assert read_weights.tensors[0].name == "w" and read_weights.header.stamp.sec == 0
        assert [t for t, _, _ in bag.messages(["action"])] == ["action"]
        with pytest.raises(KeyError, match=r"topics not in .*: nope; present: chatter"):
            list(bag.messages(["nope"]))
    info = YAML(typ="safe").load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    hashes = {
        t["topic_metadata"]["name"]: t["topic_metadata"]["type_description_hash"]
        for t in info["topics_with_message_count"]
    }
    assert hashes == {topic: store.hash_rihs01(msgtype) for topic, msgtype in topics.items()}
    assert info["storage_identifier"] == "mcap" and info["message_count"] == 3


def test_header_splits_nanoseconds(store):
    stamp = header(store, 12_345_678_901, "world")
    assert (stamp.stamp.sec, stamp.stamp.nanosec, stamp.frame_id) == (12, 345_678_901, "world")


def test_writer_errors_name_the_problem(tmp_path, store):
    with BagWriter(tmp_path / "bag", store) as bag:
        bag.add_topic("a", "std_msgs/msg/String")
        with pytest.raises(ValueError, match="topic 'a' was already added"):
            bag.add_topic("a", "std_msgs/msg/String")
        with pytest.raises(KeyError, match="unknown message type 'std_msgs/msg/Nope'"):
            bag.add_topic("b", "std_msgs/msg/Nope")
        with pytest.raises(KeyError, match="topic 'c' was not added; added: a"):
            bag.write("c", 0, store.types["std_msgs/msg/String"](data=""))
    with pytest.raises(RuntimeError, match="not open"):
        BagWriter(tmp_path / "other", store).add_topic("a", "std_msgs/msg/String")


def test_a_bag_recorded_with_older_message_definitions_still_reads(tmp_path, store):
    """A lab's bags outlive a change of rlt_msgs: the reader decodes with the definitions the bag stores."""
    old_dir = tmp_path / "msg"
    shutil.copytree(find_msg_dir(), old_dir)
    chunk_msg = old_dir / "ActionChunk.msg"  # the definition before the stage times were added
    chunk_msg.write_text(re.sub(r"builtin_interfaces/Time (vla|sent)_stamp\n", "", chunk_msg.read_text()))
    old = make_typestore(old_dir)
    assert old.hash_rihs01("rlt_msgs/msg/ActionChunk") != store.hash_rihs01("rlt_msgs/msg/ActionChunk")
    with BagWriter(tmp_path / "bag", old) as bag:
        bag.add_topic("action", "rlt_msgs/msg/ActionChunk")
        bag.add_topic("events", "rlt_msgs/msg/EpisodeEvent")
        cls = old.types["rlt_msgs/msg/ActionChunk"]
        bag.write("action", 3, cls(header=header(old, 3), chunk_id=4, source=2, policy_version=-1,
                                   axis_names=["dx", "dy"], chunk_len=2, data=np.arange(4, dtype=np.float32)))
    with BagReader(tmp_path / "bag", store) as bag:
        (_, _, msg), = bag.messages(["action"])
    assert (msg.chunk_id, msg.chunk_len, msg.axis_names) == (4, 2, ["dx", "dy"]) and not hasattr(msg, "vla_stamp")
    np.testing.assert_array_equal(msg.data, np.arange(4, dtype=np.float32))


def test_a_failed_recording_leaves_no_metadata(tmp_path, store):
    path = tmp_path / "bag"
    with pytest.raises(ZeroDivisionError), BagWriter(path, store) as bag:
        bag.add_topic("a", "std_msgs/msg/String")
        _ = 1 / 0
    assert not (path / "metadata.yaml").exists()


def test_msg_dir_from_the_environment(tmp_path, monkeypatch):
    copy = tmp_path / "msg"
    shutil.copytree(find_msg_dir(), copy)
    monkeypatch.setenv(MSGS_DIR_ENV, str(copy))
    assert find_msg_dir() == copy
    assert "rlt_msgs/msg/EpisodeEvent" in make_typestore().types
    monkeypatch.setenv(MSGS_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=r"RLT_MSGS_DIR=.*missing' holds no \.msg files"):
        find_msg_dir()


def test_missing_msg_dir_lists_the_places_searched(tmp_path, monkeypatch):
    import rlt.bags.io as bagio

    monkeypatch.delenv(MSGS_DIR_ENV, raising=False)
    monkeypatch.setattr(bagio, "__file__", str(tmp_path / "a" / "b" / "bagio.py"))
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path / "install"))
    with pytest.raises(FileNotFoundError, match=r"(?s)set RLT_MSGS_DIR.*msgs/msg.*install/share/rlt_msgs/msg"):
        find_msg_dir()
    installed = tmp_path / "install" / "share" / "rlt_msgs" / "msg"
    installed.mkdir(parents=True)
    (installed / "Tensor.msg").write_text("string name\n")
    assert find_msg_dir() == installed
