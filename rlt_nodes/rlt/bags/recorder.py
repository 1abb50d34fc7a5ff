"""Recording ROS topics into a rosbag2 MCAP bag without ROS in this module: which topics, a bounded queue, a writer.

This module owns the recorder's behaviour; the `bag_recorder` node only feeds it raw (CDR) messages from its
subscriptions. `TopicFilter` says which topics to record (glob patterns, relative names resolved in the node's
namespace). `BagRecorder.put` is called from subscription callbacks: it stamps the message with its receive time and
appends it to a queue bounded in bytes (memory stays bounded; when the writer cannot keep up the newest messages are
dropped and counted, never silently). A writer thread drains the queue into a `rlt.bags.io.BagWriter` and flushes it
every `flush_every_s`, so a crash loses at most that much (`rlt.bags.io.repair_bag` recovers the rest). `stop` writes
what is queued, closes the bag and stores the recording's statistics in its metadata (`rlt.bags.recorder` key).
It must not import rclpy or any message package.
"""

from __future__ import annotations

import collections
import dataclasses
import fnmatch
import json
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from rlt.bags.io import BagWriter, TopicQos
from rlt.config import Config

# what a session publishes: images, proprio, sim state, requests, VLA outputs, chunks (VLA/actor/human), transitions,
# actor weights, episode and operator events, the joystick, sim time (relative names; "/clock" is absolute)
DEFAULT_TOPICS: tuple[str, ...] = (
    "camera/*/image_raw",
    "joint_states",
    "sim/state",
    "chunk_request",
    "vla/output",
    "action_chunk",
    "human/action_chunk",
    "rl/transitions",
    "rl/actor_weights",
    "episode/events",
    "teleop/events",
    "joy",
    "/clock",
)
STATS_KEY = "rlt.bags.recorder"


@dataclasses.dataclass(frozen=True)
class RecorderConfig(Config):
    """What the bag recorder records and how."""

    out: str = ""  # bag folder to create (must not exist); "" = bags/rlt_<local date_time>
    topics: tuple[str, ...] = DEFAULT_TOPICS  # glob patterns; relative ones resolve in the node's namespace
    exclude: tuple[str, ...] = ()  # glob patterns never recorded
    all_topics: bool = False  # record every topic that appears (like `ros2 bag record -a`), except `exclude`
    queue_mb: float = 512.0  # MB of received messages waiting for the writer; beyond it new ones are dropped
    flush_every_s: float = 1.0  # make the bag durable this often (a crash loses at most this much)
    compress: bool = True  # zstd-compressed MCAP chunks
    discovery_every_s: float = 0.5  # how often new topics are looked for

    def validate(self) -> None:
        self.require_positive("queue_mb", "flush_every_s", "discovery_every_s")
        if not self.topics and not self.all_topics:
            self.fail("topics", "is empty: name topics to record or set all_topics")

    def resolved_out(self, now: float | None = None) -> Path:
        """The bag folder: `out`, or bags/rlt_<date_time> (local time) when empty."""
        if self.out:
            return Path(self.out)
        return Path("bags") / time.strftime("rlt_%Y%m%d_%H%M%S", time.localtime(now))


class TopicFilter:
    """Decides which (absolute) topic names to record from glob patterns given relative to `namespace`."""

    def __init__(self, cfg: RecorderConfig, namespace: str = "/") -> None:
        self.all = cfg.all_topics
        self.include = [self._absolute(p, namespace) for p in cfg.topics]
        self.exclude = [self._absolute(p, namespace) for p in cfg.exclude]

    @staticmethod
    def _absolute(pattern: str, namespace: str) -> str:
        if pattern.startswith("/"):
            return pattern
        return f"{namespace.rstrip('/')}/{pattern}"

    def wants(self, topic: str) -> bool:
        if any(fnmatch.fnmatchcase(topic, p) for p in self.exclude):
            return False
        return self.all or any(fnmatch.fnmatchcase(topic, p) for p in self.include)


@dataclasses.dataclass
class TopicStats:
    """Counters of one recorded topic."""

    messages: int = 0
    bytes: int = 0
    dropped: int = 0


@dataclasses.dataclass
class RecorderStats:
    """Counters of one recording; `summary()` gives the rates."""

    started_ns: int
    stopped_ns: int = 0
    topics: dict[str, TopicStats] = dataclasses.field(default_factory=dict)
    first_ns: int = 0  # log time of the first message (0: none yet)
    last_ns: int = 0  # log time of the last message
    flushes: int = 0
    queue_peak_bytes: int = 0
    writer_busy_s: float = 0.0  # time the writer thread spent writing and flushing

    @property
    def messages(self) -> int:
        return sum(t.messages for t in self.topics.values())

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.topics.values())

    @property
    def dropped(self) -> int:
        return sum(t.dropped for t in self.topics.values())

    def summary(self) -> dict[str, object]:
        """Rates over the recording's wall time, the writer's load and per-topic counts (JSON-ready)."""
        wall = max((self.stopped_ns or time.time_ns()) - self.started_ns, 1) / 1e9
        active = max(self.last_ns - self.first_ns, 1) / 1e9  # while messages flowed (not the startup wait)
        mb = self.bytes / 1e6
        return {
            "wall_s": round(wall, 3),
            "messages": self.messages,
            "megabytes": round(mb, 3),
            "messages_per_s": round(self.messages / wall, 1),
            "mb_per_s": round(mb / wall, 3),
            "active_s": round(active, 3),
            "active_messages_per_s": round(self.messages / active, 1),
            "active_mb_per_s": round(mb / active, 3),
            "dropped": self.dropped,
            "flushes": self.flushes,
            "queue_peak_mb": round(self.queue_peak_bytes / 1e6, 3),
            "writer_busy_s": round(self.writer_busy_s, 3),
            # what the writer could sustain: MB written per second of writer time (not of wall time)
            "writer_capacity_mb_per_s": round(mb / self.writer_busy_s, 1) if self.writer_busy_s else None,
            "topics": {k: dataclasses.asdict(v) for k, v in sorted(self.topics.items())},
        }


class BagRecorder:
    """Bounded queue + writer thread around a `BagWriter` (see the module docstring). Thread-safe `put`."""

    def __init__(self, path: Path | str, cfg: RecorderConfig, clock: Callable[[], int] = time.time_ns) -> None:
        self.path, self.cfg, self._clock = Path(path), cfg, clock
        self._limit = int(cfg.queue_mb * 1e6)
        self._queue: collections.deque[tuple[str, int, bytes | None, object]] = collections.deque()
        self._queued_bytes = 0
        self._cond = threading.Condition()
        self._last_ns = 0  # log times never go backwards (an MCAP reader without index needs them ordered)
        self._stop = False
        self._error: BaseException | None = None
        self._topics: dict[str, str] = {}
        self.stats = RecorderStats(started_ns=clock())
        self._bag = BagWriter(self.path, compress=cfg.compress)
        self._bag.__enter__()  # creates the folder now: a wrong path fails at startup, not in the thread
        self._thread = threading.Thread(target=self._write_loop, name="bag-writer", daemon=True)
        self._thread.start()

    @property
    def topics(self) -> dict[str, str]:
        """Topics added so far -> message type."""
        return dict(self._topics)

    def add_topic(self, name: str, msgtype: str, qos: TopicQos | None = None) -> None:
        """Record `name` from now on (its messages may follow right away; the writer adds it first)."""
        if name in self._topics:
            raise ValueError(f"topic {name!r} is already recorded (as {self._topics[name]})")
        if msgtype not in self._bag.types:
            raise KeyError(f"{name}: message type {msgtype} is not in the typestore; it cannot be recorded")
        self._topics[name] = msgtype
        self.stats.topics[name] = TopicStats()
        with self._cond:
            self._queue.append((name, 0, None, (msgtype, qos)))
            self._cond.notify()

    def put(self, topic: str, data: bytes) -> bool:
        """Queue one serialized message received now on `topic`; False when dropped (queue full)."""
        stats = self.stats.topics[topic]
        size = len(data)
        with self._cond:
            if self._error is not None:
                raise RuntimeError(f"the bag writer failed: {self._error}") from self._error
            if self._queued_bytes + size > self._limit:
                stats.dropped += 1
                return False
            self._last_ns = stamp = max(self._clock(), self._last_ns)
            self._queue.append((topic, stamp, data, None))
            self._queued_bytes += size
            self.stats.queue_peak_bytes = max(self.stats.queue_peak_bytes, self._queued_bytes)
            self._cond.notify()
        return True

    def stop(self) -> dict[str, object]:
        """Write everything queued, close the bag (metadata.yaml with the statistics) and return the summary."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join()
        self.stats.stopped_ns = self._clock()
        summary = self.stats.summary()
        if self._error is None:
            self._bag.set_metadata(STATS_KEY, json.dumps(summary))
            self._bag.__exit__(None, None, None)
        else:
            self._bag.__exit__(type(self._error), self._error, None)
            raise RuntimeError(f"the bag writer failed: {self._error}") from self._error
        return summary

    def _take(self) -> list[tuple[str, int, bytes | None, object]]:
        with self._cond:
            if not self._queue and not self._stop:
                self._cond.wait(timeout=self.cfg.flush_every_s)
            batch = list(self._queue)
            self._queue.clear()
            return batch  # its bytes stay counted in the bound until written

    def _write_loop(self) -> None:
        last_flush = time.monotonic()
        try:
            while True:
                batch = self._take()
                t0 = time.perf_counter()
                self._write(batch)
                with self._cond:
                    self._queued_bytes -= sum(len(data) for _, _, data, _ in batch if data is not None)
                if time.monotonic() - last_flush >= self.cfg.flush_every_s:
                    self._bag.flush()
                    self.stats.flushes += 1
                    last_flush = time.monotonic()
                self.stats.writer_busy_s += time.perf_counter() - t0
                with self._cond:
                    if self._stop and not self._queue:
                        return
        except BaseException as exc:  # surfaced by the next put() / stop()
            with self._cond:
                self._error = exc

    def _write(self, batch: Iterable[tuple[str, int, bytes | None, object]]) -> None:
        for topic, stamp, data, extra in batch:
            if data is None:
                msgtype, qos = extra  # type: ignore[misc]
                self._bag.add_topic(topic, msgtype, qos)
                continue
            self._bag.write_raw(topic, stamp, data)
            self.stats.first_ns = self.stats.first_ns or stamp
            self.stats.last_ns = stamp
            stats = self.stats.topics[topic]
            stats.messages += 1
            stats.bytes += len(data)
