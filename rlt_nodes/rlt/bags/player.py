"""Replaying a rosbag2 bag at its recorded timing (or faster), without ROS in this module.

This module owns the replay schedule: which topics of the bag are played, when each message is due (the recorded
log-time offsets divided by `rate`), the wait (sleep, then a short spin for sub-millisecond accuracy) and the
timing statistics (publish time minus due time). The `bag_player` node creates one publisher per topic with the QoS
the bag recorded and hands `BagPlayer.run` a callback that publishes the raw CDR bytes. Sim time: a bag that
recorded `/clock` (every sim session) replays it like any topic, so the replayed header stamps and /clock agree;
for a bag without it, `clock` publishes /clock = the message's log time before each message (`ros2 bag play
--clock`). It must not import rclpy or any message package.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rlt.bags.io import BagReader, TopicQos, make_typestore
from rlt.config import Config

CLOCK_TOPIC = "/clock"
_SPIN_NS = 1_500_000  # wake up this long before a message is due and spin the rest


@dataclasses.dataclass(frozen=True)
class PlayerConfig(Config):
    """Which bag the player replays and how."""

    bag: str = ""  # rosbag2 folder to replay (required)
    rate: float = 1.0  # 1 = recorded timing, 2 = twice as fast; 0 = as fast as possible
    topics: tuple[str, ...] = ()  # glob patterns of topics to play; empty = all
    exclude: tuple[str, ...] = ()  # glob patterns of topics not to play
    clock: bool = True  # publish /clock from the log time when the bag has no /clock of its own
    loop: bool = False  # start again at the end (until stopped)
    start_offset_s: float = 0.0  # skip this much of the beginning of the bag
    wait_for: tuple[str, ...] = ()  # topics that must have a subscriber before playing starts (e.g. vla/output)
    wait_timeout_s: float = 10.0  # play anyway after waiting this long for them

    def validate(self) -> None:
        self.require_range("rate", 0.0, 1e6)
        self.require_range("start_offset_s", 0.0, 1e9)
        self.require_range("wait_timeout_s", 0.0, 3600.0)


@dataclasses.dataclass
class PlaybackStats:
    """How one pass went: counts and the lateness of each publish against its due time."""

    messages: int = 0
    wall_s: float = 0.0
    lateness_ns: list[int] = dataclasses.field(default_factory=list)

    def summary(self) -> dict[str, float]:
        late = np.asarray(self.lateness_ns, np.float64) / 1e6 if self.lateness_ns else np.zeros(1)
        return {
            "messages": self.messages,
            "wall_s": round(self.wall_s, 3),
            "lateness_p50_ms": round(float(np.percentile(late, 50)), 4),
            "lateness_p99_ms": round(float(np.percentile(late, 99)), 4),
            "lateness_max_ms": round(float(late.max()), 4),
        }


class BagPlayer:
    """Replays the selected topics of one bag through caller-supplied publish functions."""

    def __init__(self, cfg: PlayerConfig) -> None:
        self.cfg = cfg
        path = Path(cfg.bag)
        if not cfg.bag:
            raise ValueError("PlayerConfig.bag is required: the rosbag2 folder to replay")
        if not path.exists():
            raise FileNotFoundError(f"PlayerConfig.bag: {path} does not exist")
        self._store = make_typestore()
        with BagReader(path, self._store) as bag:
            all_topics, qos = bag.topics, bag.qos
            self.start_ns, self.end_ns = bag.start_ns, bag.end_ns
        selected = {
            name: msgtype
            for name, msgtype in all_topics.items()
            if (not cfg.topics or any(fnmatch.fnmatchcase(name, p) for p in cfg.topics))
            and not any(fnmatch.fnmatchcase(name, p) for p in cfg.exclude)
        }
        if not selected:
            raise ValueError(f"PlayerConfig.topics/exclude select none of the bag's topics: {sorted(all_topics)}")
        self.topics: dict[str, tuple[str, TopicQos]] = {name: (selected[name], qos[name]) for name in selected}
        self.publishes_clock = cfg.clock and CLOCK_TOPIC not in self.topics

    def run(
        self,
        publish: Callable[[str, bytes], None],
        stop: threading.Event,
        publish_clock: Callable[[int], None] | None = None,
    ) -> PlaybackStats:
        """Play the bag (again and again with `loop`) until its end or `stop`; returns the statistics of the passes.

        publish(topic, cdr_bytes) sends one message; publish_clock(stamp_ns) the /clock (when `publishes_clock`).
        """
        stats = PlaybackStats()
        t_start = time.perf_counter_ns()
        while not stop.is_set():
            self._play_once(publish, stop, publish_clock if self.publishes_clock else None, stats)
            if not self.cfg.loop:
                break
        stats.wall_s = (time.perf_counter_ns() - t_start) / 1e9
        return stats

    def _play_once(
        self,
        publish: Callable[[str, bytes], None],
        stop: threading.Event,
        publish_clock: Callable[[int], None] | None,
        stats: PlaybackStats,
    ) -> None:
        skip_until = self.start_ns + int(self.cfg.start_offset_s * 1e9)
        rate = self.cfg.rate
        t0 = first_ns = 0
        with BagReader(self.cfg.bag, self._store) as bag:
            for topic, log_ns, raw in bag.raw_messages(list(self.topics)):
                if log_ns < skip_until:
                    continue
                if stop.is_set():
                    return
                if not t0:  # the first played message goes out at once, the others at their recorded offsets
                    t0, first_ns = time.perf_counter_ns(), log_ns
                due = t0 + (int((log_ns - first_ns) / rate) if rate > 0 else 0)
                _wait_until(due, stop)
                if publish_clock is not None:
                    publish_clock(log_ns)
                publish(topic, raw)
                if rate > 0:
                    stats.lateness_ns.append(time.perf_counter_ns() - due)
                stats.messages += 1


def _wait_until(due_ns: int, stop: threading.Event) -> None:
    """Sleep until shortly before `due_ns` (perf_counter ns), then spin; returns early when `stop` is set."""
    while True:
        left = due_ns - time.perf_counter_ns()
        if left <= 0:
            return
        if left > _SPIN_NS:
            if stop.wait((left - _SPIN_NS) / 1e9):
                return
        elif stop.is_set():
            return
        else:
            time.sleep(0)  # spin, but let other threads (the node's executor) run
