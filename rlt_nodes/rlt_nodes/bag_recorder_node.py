"""bag_recorder: records the session's topics into a rosbag2 MCAP bag (what `ros2 bag record` would write).

Every recorder.discovery_every_s it looks for new topics matching recorder.topics (relative names resolve in the
node's namespace) that have a publisher, and subscribes to them raw (CDR bytes, no deserialization) with a QoS
compatible with what the publishers offer; the bytes go to rlt.bags.recorder.BagRecorder (bounded queue, writer thread,
periodic flush). On shutdown it closes the bag and logs the recording's rates and drops.
"""

from __future__ import annotations

from rclpy.clock import Clock, ClockType
from rclpy.node import Node

from rlt.bags.recorder import BagRecorder, RecorderConfig, TopicFilter
from rlt_nodes import convert, qos
from rlt_nodes.params import declare_config
from rlt_nodes.runner import run_node


class BagRecorderNode(Node):
    """Thin wrapper: graph discovery -> raw subscriptions -> BagRecorder.put."""

    def __init__(self) -> None:
        super().__init__("bag_recorder")
        self.cfg = declare_config(self, RecorderConfig, "recorder")
        self.filter = TopicFilter(self.cfg, self.get_namespace())
        self.path = self.cfg.resolved_out()
        self.recorder = BagRecorder(self.path, self.cfg)
        self.subs: dict[str, object] = {}
        self.skipped: set[str] = set()
        steady = Clock(clock_type=ClockType.STEADY_TIME)  # sim time may stand still; discovery must not
        self.create_timer(self.cfg.discovery_every_s, self.discover, clock=steady)
        self.get_logger().info(f"recording to {self.path}")
        self.discover()

    def discover(self) -> None:
        for topic, types in self.get_topic_names_and_types():
            if topic in self.subs or topic in self.skipped or not self.filter.wants(topic):
                continue
            publishers = self.get_publishers_info_by_topic(topic)
            if not publishers:
                continue  # only subscribers so far: wait for a publisher and its QoS
            offered = qos.offered(publishers)
            try:
                msg_class = convert.message_class(types[0])
                self.recorder.add_topic(topic, types[0], offered)
            except (KeyError, ValueError) as exc:
                self.get_logger().warning(f"not recording {topic}: {exc}")
                self.skipped.add(topic)
                continue
            self.subs[topic] = self.create_subscription(
                msg_class, topic, lambda data, t=topic: self.on_message(t, data), qos.recording(offered), raw=True
            )
            self.get_logger().info(f"recording {topic} ({types[0]})")

    def on_message(self, topic: str, data: bytes) -> None:
        if not self.recorder.put(topic, data):
            self.get_logger().warning(
                f"queue full ({self.cfg.queue_mb} MB): dropping messages (first: {topic})", throttle_duration_sec=5.0
            )

    def destroy_node(self) -> None:
        if not hasattr(self, "recorder"):  # failed at startup
            return super().destroy_node()
        summary = self.recorder.stop()
        # print, not the logger: at shutdown the context (and /rosout) may already be gone
        print(
            f"[bag_recorder] {self.path}: {summary['messages']} messages, {summary['megabytes']} MB in "
            f"{summary['wall_s']} s ({summary['messages_per_s']} msg/s, {summary['mb_per_s']} MB/s), "
            f"{summary['dropped']} dropped",
            flush=True,
        )
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    return run_node(BagRecorderNode, argv)
