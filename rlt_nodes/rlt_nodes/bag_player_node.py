"""bag_player: replays a rosbag2 bag at its recorded timing (player.rate x faster), with sim time.

Every selected topic is republished raw (the recorded CDR bytes) under its recorded name with the QoS it was
recorded with; a recorded /clock is replayed with the rest, and a bag without one gets /clock = log time (sim time
for `use_sim_time` nodes). Playback starts once the player.wait_for topics have subscribers (or after
player.wait_timeout_s) and runs in its own thread (rlt.bags.player.BagPlayer); at the end the node logs the timing
statistics and exits (unless player.loop).
"""

from __future__ import annotations

import threading
import time

from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rosgraph_msgs.msg import Clock as ClockMsg

from rlt.bags.player import BagPlayer, PlayerConfig
from rlt_nodes import convert, qos
from rlt_nodes.params import declare_config
from rlt_nodes.runner import finish, run_node


class BagPlayerNode(Node):
    """Thin wrapper: publishers per recorded topic; BagPlayer.run in a thread."""

    def __init__(self) -> None:
        super().__init__("bag_player")
        self.stop, self.thread = threading.Event(), threading.Thread(target=self.play, daemon=True)
        self.cfg = declare_config(self, PlayerConfig, "player")
        self.player = BagPlayer(self.cfg)
        self.pubs = {
            topic: self.create_publisher(convert.message_class(msgtype), topic, qos.replaying(topic_qos))
            for topic, (msgtype, topic_qos) in self.player.topics.items()
        }
        self.clock_pub = self.create_publisher(ClockMsg, "/clock", qos.STATE) if self.player.publishes_clock else None
        self.waiting = [self.resolve_topic_name(t) for t in self.cfg.wait_for]
        self.created = time.monotonic()
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.start_timer = self.create_timer(0.02, self.maybe_start, clock=steady)
        self.done = False
        self.create_timer(0.05, self.check_done, clock=steady)
        self.get_logger().info(f"{self.cfg.bag}: {len(self.pubs)} topics at rate {self.cfg.rate}")

    def maybe_start(self) -> None:
        missing = [t for t in self.waiting if self.count_subscribers(t) == 0]
        if missing and time.monotonic() - self.created < self.cfg.wait_timeout_s:
            return
        if missing:
            self.get_logger().warning(f"no subscriber on {missing} after {self.cfg.wait_timeout_s} s: playing anyway")
        self.start_timer.cancel()
        self.thread.start()

    def play(self) -> None:
        stats = self.player.run(
            lambda topic, raw: self.pubs[topic].publish(raw), self.stop, self.publish_clock if self.clock_pub else None
        )
        summary = stats.summary()
        self.get_logger().info(
            f"played {summary['messages']} messages in {summary['wall_s']} s; lateness p50 "
            f"{summary['lateness_p50_ms']} ms, p99 {summary['lateness_p99_ms']} ms"
        )
        self.done = True  # the executor thread ends the node (see check_done)

    def check_done(self) -> None:
        if self.done:
            finish(self, 0)

    def publish_clock(self, stamp_ns: int) -> None:
        self.clock_pub.publish(ClockMsg(clock=convert.ns_to_stamp(stamp_ns)))

    def destroy_node(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    return run_node(BagPlayerNode, argv)
