"""rosbag2 files without ROS: a typestore with the `rlt_msgs` types, an MCAP bag writer and a bag reader.

This module owns how the project turns messages into bag files and back, for the demo dataset (`rlt.sim.demos`) and
the bag recorder / player (`rlt.bags.recorder`, `rlt.bags.player`). It uses the pure-Python `rosbags` library, so
bags written here open in `ros2 bag`, Foxglove and any MCAP tool; the per-topic type hashes it stores are the
RIHS01 hashes ROS 2 computes, and each topic's offered QoS is stored as `ros2 bag record` does. Recorded messages
are written as the raw CDR bytes received (`write_raw`), and `flush` makes everything written so far durable: after
a crash, `repair_bag` turns the interrupted bag into a complete one holding every message up to the last flush
(what `ros2 bag reindex` does for rosbag2's own recordings).
It must not import rclpy or any message package: message classes come from the typestore (`BagWriter.types`).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import struct
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from rosbags.interfaces import Connection, Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import CompressionFormat, CompressionMode, Reader, ReaderError, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

MSG_PACKAGE = "rlt_msgs"
MSGS_DIR_ENV = "RLT_MSGS_DIR"
ROS_STORE = Stores.ROS2_KILTED
METADATA = "metadata.yaml"
_MCAP_MAGIC = b"\x89MCAP0\r\n"


@dataclasses.dataclass(frozen=True)
class TopicQos:
    """The QoS a topic was published with, as far as recording and replaying it needs (stored in the bag)."""

    reliable: bool = True
    transient_local: bool = False
    depth: int = 10

    def to_rosbags(self) -> Qos:
        never = QosTime(0x7FFFFFFF, 0xFFFFFFFF)  # rmw's "infinite" duration, as ros2 bag writes it
        return Qos(
            QosHistory.KEEP_LAST,
            self.depth,
            QosReliability.RELIABLE if self.reliable else QosReliability.BEST_EFFORT,
            QosDurability.TRANSIENT_LOCAL if self.transient_local else QosDurability.VOLATILE,
            never,
            never,
            QosLiveliness.AUTOMATIC,
            never,
            False,
        )

    @classmethod
    def from_rosbags(cls, profiles: Collection[Qos]) -> TopicQos:
        """The profile a replay should offer: reliable / transient-local only if every recorded publisher was."""
        if not profiles:
            return cls()
        return cls(
            reliable=all(q.reliability == QosReliability.RELIABLE for q in profiles),
            transient_local=all(q.durability == QosDurability.TRANSIENT_LOCAL for q in profiles),
            depth=max(max(int(q.depth) for q in profiles), 1),
        )


def find_msg_dir() -> Path:
    """Folder holding the `rlt_msgs` .msg files.

    Looked up in order: the `RLT_MSGS_DIR` environment variable (an error if set but wrong), the repository's
    `msgs/msg`, then `share/rlt_msgs/msg` under every `AMENT_PREFIX_PATH` entry (an installed workspace).
    """
    explicit = os.environ.get(MSGS_DIR_ENV)
    if explicit:
        path = Path(explicit)
        if not any(path.glob("*.msg")):
            raise FileNotFoundError(f"{MSGS_DIR_ENV}={explicit!r} holds no .msg files")
        return path
    candidates = [Path(__file__).resolve().parents[3] / "msgs" / "msg"]
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        candidates.append(Path(prefix) / "share" / MSG_PACKAGE / "msg")
    for path in candidates:
        if any(path.glob("*.msg")):
            return path
    searched = "\n  ".join(str(p) for p in candidates)
    raise FileNotFoundError(
        f"cannot find the {MSG_PACKAGE} .msg files; set {MSGS_DIR_ENV} or source the workspace. Searched:\n  {searched}"
    )


def make_typestore(msg_dir: Path | None = None) -> Typestore:
    """ROS 2 Kilted typestore plus every `rlt_msgs/msg/<Name>` defined in `msg_dir` (default: `find_msg_dir()`)."""
    store = get_typestore(ROS_STORE)
    types: dict[str, Any] = {}
    for path in sorted((msg_dir or find_msg_dir()).glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(encoding="utf-8"), f"{MSG_PACKAGE}/msg/{path.stem}"))
    store.register(types)
    return store


def _hash(store: Typestore, msgtype: str) -> str:
    """The RIHS01 hash of `msgtype` in `store` ("" when the store does not know it)."""
    return store.hash_rihs01(msgtype) if msgtype in store.types else ""


def time_msg(store: Typestore, stamp_ns: int) -> Any:
    """A `builtin_interfaces/msg/Time` for time `stamp_ns` (ns)."""
    return store.types["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)


def header(store: Typestore, stamp_ns: int, frame_id: str = "") -> Any:
    """A `std_msgs/msg/Header` for time `stamp_ns` (ns)."""
    return store.types["std_msgs/msg/Header"](stamp=time_msg(store, stamp_ns), frame_id=frame_id)


class BagWriter:
    """Writes one rosbag2 folder (metadata.yaml + one MCAP file, zstd-compressed chunks). Use as a context manager.

    `add_topic` each topic once, then `write` messages built from `types`; `set_metadata` stores strings in the
    bag's `custom_data` (shown by `ros2 bag info`). If the `with` block raises, the bag is left without
    metadata.yaml, so that it cannot be mistaken for a complete one.
    """

    def __init__(self, path: Path | str, store: Typestore | None = None, *, compress: bool = True) -> None:
        self.path = Path(path)
        self.store = store or make_typestore()
        self.types: Mapping[str, Any] = self.store.types
        self._writer = Writer(self.path, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP)
        if compress:
            self._writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        self._connections: dict[str, Connection] = {}
        self._open = False
        self._unflushed = False

    def __enter__(self) -> BagWriter:
        self._writer.open()
        self._open = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._open = False
        if exc_type is None:
            self._writer.close()
        else:
            self._writer.abort()

    def add_topic(self, name: str, msgtype: str, qos: TopicQos | None = None) -> None:
        """Declare topic `name` carrying `msgtype` (e.g. "sensor_msgs/msg/Image"), offered with `qos` if given."""
        self._require_open()
        if name in self._connections:
            raise ValueError(f"topic {name!r} was already added (as {self._connections[name].msgtype})")
        if msgtype not in self.types:
            raise KeyError(f"unknown message type {msgtype!r}; the typestore has {ROS_STORE.name} and {MSG_PACKAGE}")
        profiles = [qos.to_rosbags()] if qos is not None else []
        self._connections[name] = self._writer.add_connection(
            name, msgtype, typestore=self.store, offered_qos_profiles=profiles
        )

    def write(self, topic: str, stamp_ns: int, msg: Any) -> None:
        """Serialize `msg` (CDR) and store it on `topic` at log time `stamp_ns` (ns)."""
        self._require_open()
        connection = self._connections.get(topic)
        if connection is None:
            raise KeyError(f"topic {topic!r} was not added; added: {', '.join(self._connections) or 'none'}")
        self._writer.write(connection, stamp_ns, self.store.serialize_cdr(msg, connection.msgtype))
        self._unflushed = True

    def write_raw(self, topic: str, stamp_ns: int, data: bytes | memoryview) -> None:
        """Store already serialized CDR bytes (e.g. a raw subscription's message) on `topic` at log time `stamp_ns`."""
        self._require_open()
        connection = self._connections.get(topic)
        if connection is None:
            raise KeyError(f"topic {topic!r} was not added; added: {', '.join(self._connections) or 'none'}")
        self._writer.write(connection, stamp_ns, data)
        self._unflushed = True

    def flush(self) -> None:
        """Make every message written so far durable: close the pending MCAP chunk, flush and fsync the file.

        A crash after this loses nothing written before it (`repair_bag` recovers it). Costs one chunk record and
        an fsync, so call it periodically (the recorder: every `flush_every_s`), not per message.
        """
        self._require_open()
        storage = self._writer.storage  # rosbags' McapWriter (pinned rosbags version; tested in test_bagio)
        if storage is None or not self._unflushed:
            return
        if storage.chunk.bio.tell():
            storage.close_chunk()
        storage.bio.flush()
        os.fsync(storage.bio.fileno())
        self._unflushed = False

    def set_metadata(self, key: str, value: str) -> None:
        """Store `value` under `key` in the bag's custom metadata."""
        self._writer.set_custom_data(key, value)

    def _require_open(self) -> None:
        if not self._open:
            raise RuntimeError("BagWriter is not open; use it in a `with` block")


class BagReader:
    """Reads a rosbag2 folder written by `BagWriter` (or by `ros2 bag record`). Use as a context manager."""

    def __init__(self, path: Path | str, store: Typestore | None = None) -> None:
        self.path = Path(path)
        if self.path.is_dir() and not (self.path / METADATA).is_file() and any(self.path.glob("*.mcap")):
            raise FileNotFoundError(
                f"{self.path} has no {METADATA}: the recording was interrupted; recover it up to its last flush "
                f"with `rlt bag repair {self.path}`"
            )
        self.store = store or make_typestore()
        self._reader = Reader(self.path)

    def __enter__(self) -> BagReader:
        self._reader.open()
        self.store = self._store_for_bag()
        return self

    def _store_for_bag(self) -> Typestore:
        """`self.store`, unless the bag was recorded with other definitions of its types (an older `rlt_msgs`):
        then a typestore of the definitions the bag stores, so old recordings still read field by field."""
        stale = [c for c in self._reader.connections if c.digest and c.digest != _hash(self.store, c.msgtype)]
        if not stale:
            return self.store
        types: dict[str, Any] = {}
        for c in stale:
            if c.msgdef is None or not c.msgdef.data:
                raise ValueError(
                    f"{self.path}: topic {c.topic} was recorded as {c.msgtype} {c.digest}, which differs from the "
                    f"definition here ({_hash(self.store, c.msgtype)}), and the bag does not store its definition"
                )
            types.update(get_types_from_msg(c.msgdef.data, c.msgtype))
        store = get_typestore(ROS_STORE)
        store.register(types)
        store.register({name: fields for name, fields in self.store.fielddefs.items() if name not in store.types})
        return store

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._reader.close()

    @property
    def topics(self) -> dict[str, str]:
        """Topic name -> message type."""
        return {c.topic: c.msgtype for c in self._reader.connections}

    @property
    def type_hashes(self) -> dict[str, str]:
        """Topic name -> type hash recorded in the bag ("RIHS01_<sha256 hex>")."""
        return {c.topic: c.digest for c in self._reader.connections}

    @property
    def metadata(self) -> dict[str, str]:
        """The bag's custom metadata."""
        return dict(self._reader.storage.metadata.custom or {})

    @property
    def qos(self) -> dict[str, TopicQos]:
        """Topic name -> the QoS its recorded publishers offered (defaults when the bag does not say)."""
        return {
            c.topic: TopicQos.from_rosbags(getattr(c.ext, "offered_qos_profiles", ())) for c in self._reader.connections
        }

    @property
    def message_count(self) -> int:
        return int(self._reader.message_count)

    @property
    def start_ns(self) -> int:
        return int(self._reader.start_time)

    @property
    def end_ns(self) -> int:
        """One past the last message's log time."""
        return int(self._reader.end_time)

    def messages(self, topics: Collection[str] = ()) -> Iterator[tuple[str, int, Any]]:
        """(topic, stamp_ns, message) in time order, for `topics` (all if empty)."""
        for topic, stamp_ns, raw in self.raw_messages(topics):
            yield topic, stamp_ns, self.store.deserialize_cdr(raw, self.topics[topic])

    def raw_messages(self, topics: Collection[str] = ()) -> Iterator[tuple[str, int, bytes]]:
        """(topic, stamp_ns, serialized CDR bytes) in time order, for `topics` (all if empty)."""
        unknown = set(topics) - set(self.topics)
        if unknown:
            present = ", ".join(self.topics)
            raise KeyError(f"topics not in {self.path}: {', '.join(sorted(unknown))}; present: {present}")
        connections = [c for c in self._reader.connections if not topics or c.topic in topics]
        for connection, stamp_ns, raw in self._reader.messages(connections):
            yield connection.topic, stamp_ns, raw


@dataclasses.dataclass(frozen=True)
class RepairReport:
    """What `repair_bag` did."""

    path: Path
    messages: int  # messages recovered
    discarded_bytes: int  # unreadable tail of the interrupted MCAP file (a partly written chunk)


def repair_bag(path: Path | str, store: Typestore | None = None) -> RepairReport | None:
    """Turn a bag whose recording was interrupted (no metadata.yaml; an MCAP file without footer) into a complete one.

    Keeps every record written before the crash up to the last complete one, i.e. every message up to the recorder's
    last `flush`, and rewrites the bag with indexes and metadata. Returns None when the bag is already complete.
    """
    path = Path(path)
    if (path / METADATA).is_file():
        return None
    files = sorted(path.glob("*.mcap"))
    if len(files) != 1:
        raise FileNotFoundError(f"{path}: expected one .mcap file of an interrupted recording, found {len(files)}")
    broken = files[0]
    store = store or make_typestore()
    work = path.parent / f".{path.name}.repair"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        end, size = _last_complete_record(broken), broken.stat().st_size
        closed = work / broken.name
        with open(broken, "rb") as src, open(closed, "wb") as dst:
            dst.write(src.read(end))
            # DataEnd (no crc) and a Footer without summary: readers then scan the records
            dst.write(b"\x0f" + struct.pack("<QI", 4, 0))
            dst.write(b"\x02" + struct.pack("<QQQI", 20, 0, 0, 0) + _MCAP_MAGIC)
        count = 0
        rebuilt = work / path.name
        with Reader(closed) as reader, BagWriter(rebuilt, store) as bag:
            by_id = {}
            for c in reader.connections:
                qos = TopicQos.from_rosbags(c.ext.offered_qos_profiles) if c.ext.offered_qos_profiles else None
                bag.add_topic(c.topic, c.msgtype, qos)
                by_id[c.id] = c.topic
            for connection, stamp_ns, raw in reader.messages():
                bag.write_raw(by_id[connection.id], stamp_ns, raw)
                count += 1
            bag.set_metadata("repaired", f"interrupted recording; {size - end} bytes after the last flush discarded")
        mcap = rebuilt / f"{path.name}.mcap"  # the name metadata.yaml lists; metadata.yaml goes in last
        os.replace(mcap, path / mcap.name)
        if broken.name != mcap.name:
            broken.unlink()
        os.replace(rebuilt / METADATA, path / METADATA)
    except ReaderError as exc:
        raise ValueError(f"{broken}: cannot recover ({exc})") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return RepairReport(path, count, size - end)


def _last_complete_record(path: Path) -> int:
    """Byte offset just past the last complete MCAP record (before any DataEnd / Footer) of `path`."""
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(_MCAP_MAGIC):
        raise ValueError(f"{path}: not an MCAP file")
    offset = good = len(_MCAP_MAGIC)
    while offset + 9 <= len(data):
        op = data[offset]
        (length,) = struct.unpack_from("<Q", data, offset + 1)
        end = offset + 9 + length
        if end > len(data) or op in (0x0F, 0x02):  # truncated record, or the file's own end
            break
        offset = good = end
    return good
