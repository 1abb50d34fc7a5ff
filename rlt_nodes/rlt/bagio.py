"""rosbag2 files without ROS: a typestore with the `rlt_msgs` types, an MCAP bag writer and a bag reader.

This module owns how the project turns messages into bag files and back, for the demo dataset (`rlt.sim.demos`)
and the bag recorder. It uses the pure-Python `rosbags` library, so bags written here open in `ros2 bag`,
Foxglove and any MCAP tool; the per-topic type hashes it stores are the RIHS01 hashes ROS 2 computes.
It must not import rclpy or any message package: message classes come from the typestore (`BagWriter.types`).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from rosbags.interfaces import Connection
from rosbags.rosbag2 import CompressionFormat, CompressionMode, Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

MSG_PACKAGE = "rlt_msgs"
MSGS_DIR_ENV = "RLT_MSGS_DIR"
ROS_STORE = Stores.ROS2_KILTED


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
    candidates = [Path(__file__).resolve().parents[2] / "msgs" / "msg"]
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


def header(store: Typestore, stamp_ns: int, frame_id: str = "") -> Any:
    """A `std_msgs/msg/Header` for time `stamp_ns` (ns)."""
    time_cls = store.types["builtin_interfaces/msg/Time"]
    header_cls = store.types["std_msgs/msg/Header"]
    return header_cls(stamp=time_cls(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id=frame_id)


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

    def add_topic(self, name: str, msgtype: str) -> None:
        """Declare topic `name` carrying `msgtype` (e.g. "sensor_msgs/msg/Image")."""
        self._require_open()
        if name in self._connections:
            raise ValueError(f"topic {name!r} was already added (as {self._connections[name].msgtype})")
        if msgtype not in self.types:
            raise KeyError(f"unknown message type {msgtype!r}; the typestore has {ROS_STORE.name} and {MSG_PACKAGE}")
        self._connections[name] = self._writer.add_connection(name, msgtype, typestore=self.store)

    def write(self, topic: str, stamp_ns: int, msg: Any) -> None:
        """Serialize `msg` (CDR) and store it on `topic` at log time `stamp_ns` (ns)."""
        self._require_open()
        connection = self._connections.get(topic)
        if connection is None:
            raise KeyError(f"topic {topic!r} was not added; added: {', '.join(self._connections) or 'none'}")
        self._writer.write(connection, stamp_ns, self.store.serialize_cdr(msg, connection.msgtype))

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
        self.store = store or make_typestore()
        self._reader = Reader(self.path)

    def __enter__(self) -> BagReader:
        self._reader.open()
        return self

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

    def messages(self, topics: Collection[str] = ()) -> Iterator[tuple[str, int, Any]]:
        """(topic, stamp_ns, message) in time order, for `topics` (all if empty)."""
        unknown = set(topics) - set(self.topics)
        if unknown:
            present = ", ".join(self.topics)
            raise KeyError(f"topics not in {self.path}: {', '.join(sorted(unknown))}; present: {present}")
        connections = [c for c in self._reader.connections if not topics or c.topic in topics]
        for connection, stamp_ns, raw in self._reader.messages(connections):
            yield connection.topic, stamp_ns, self.store.deserialize_cdr(raw, connection.msgtype)
