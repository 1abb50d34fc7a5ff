"""teleop: the joystick intervention; `joy` (sensor_msgs/Joy) in, `human/action_chunk` and `teleop/events` out.

While the mapping's dead-man button is held it publishes a human `ActionChunk` (source HUMAN) per Joy message and
at least every 1 / teleop.rate_hz when the Joy source publishes only on change; button presses
become operator events on `teleop/events` (INTERVENE_BEGIN / _END, HANDOFF, SUCCESS, FAILURE, RESET), which the
actor and the driver act on. Works with our `joystick` node, the ROS `joy` / `joy_linux` nodes, or the sim's
scripted human. The mapping (per device YAML, `mapping`) and all decisions are in rlt.teleop.teleop.
"""

from __future__ import annotations

import dataclasses
import time

from rclpy.node import Node
from rlt_msgs.msg import ActionChunk, EpisodeEvent
from sensor_msgs.msg import Joy

from rlt.config import Config
from rlt.teleop.teleop import Teleop, TeleopConfig, load_mapping
from rlt_nodes import convert, qos
from rlt_nodes.boundary import subscribe
from rlt_nodes.params import declare_chunking, declare_config
from rlt_nodes.runner import run_node


@dataclasses.dataclass(frozen=True)
class MappingConfig(Config):
    """The joystick mapping, unprefixed: the teleop node's and the sim's scripted human's (which must match it)."""

    mapping: str = "xbox"  # device name (launch/config/joy/<mapping>.yaml) or a YAML path: which axis / button is what


class TeleopNode(Node):
    """Thin wrapper: Joy -> Teleop.on_joy -> chunk + events."""

    def __init__(self) -> None:
        super().__init__("teleop")
        cfg = declare_config(self, TeleopConfig, "teleop")
        mapping = load_mapping(declare_config(self, MappingConfig).mapping)  # device name or YAML path
        self.teleop = Teleop(mapping, cfg, declare_chunking(self))
        self.period_ns = int(1e9 / cfg.rate_hz)
        self.sent_ns = 0
        self.pub_chunk = self.create_publisher(ActionChunk, "human/action_chunk", qos.CONTROL)
        # volatile: a node that joins late (or restarts) never acts on an old button press
        self.pub_events = self.create_publisher(EpisodeEvent, "teleop/events", qos.CONTROL)
        subscribe(self, Joy, "joy", self.on_joy, qos.JOY)
        self.create_timer(1.0 / cfg.rate_hz, self.repeat)
        self.get_logger().info(
            f"mapping {mapping.device}: hold button {mapping.deadman_button} to drive, axes {mapping.axes} -> "
            f"{cfg.axis_names}"
        )

    def now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def on_joy(self, msg: Joy) -> None:
        joy = convert.joy_from_msg(msg)
        # stamped with this node's clock, not the Joy's: repeats, releases and chunks then share one time base
        out = self.teleop.on_joy(joy.axes, joy.buttons, self.now_ns(), time.monotonic_ns())
        for event in out.events:
            self.pub_events.publish(convert.event_to_msg(event))
            self.get_logger().info(f"operator: {event.event.name} ({event.detail})")
        if out.chunk is not None:
            self.pub_chunk.publish(convert.chunk_to_msg(out.chunk))
            self.sent_ns = self.now_ns()

    def repeat(self) -> None:
        now = self.now_ns()
        released = self.teleop.expire(now, time.monotonic_ns())
        if released is not None:
            self.pub_events.publish(convert.event_to_msg(released))
            self.get_logger().warning(f"operator released: {released.detail} (gamepad or joystick node gone?)")
        if now - self.sent_ns < self.period_ns:
            return
        chunk = self.teleop.repeat(now)
        if chunk is not None:
            self.pub_chunk.publish(convert.chunk_to_msg(chunk))
            self.sent_ns = now


def main(argv: list[str] | None = None) -> int:
    return run_node(TeleopNode, argv)
