"""operator: publish one operator command (START, RESET, HANDOFF, SUCCESS, FAILURE) on `teleop/events` and exit.

The command-line twin of the gamepad's buttons, for bring-up and for machines without `ros2 topic pub` for rlt_msgs
(`rlt robot event <name>` runs it). It waits until the chunk executor's subscription matches, so the command is
not lost to discovery, publishes once and leaves.
"""

from __future__ import annotations

import sys
import time

import rclpy
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.utilities import remove_ros_args
from rlt_msgs.msg import EpisodeEvent

from rlt.types import EpisodeEvent as Event
from rlt.types import Event as Kind
from rlt_nodes import convert, qos

COMMANDS = ("START", "RESET", "HANDOFF", "SUCCESS", "FAILURE")


def main(argv: list[str] | None = None) -> int:
    args = remove_ros_args(list(sys.argv if argv is None else argv))[1:]
    if len(args) != 1 or args[0].upper() not in COMMANDS:
        print(f"usage: operator {{{','.join(c.lower() for c in COMMANDS)}}} [--ros-args ...]", file=sys.stderr)
        return 2
    rclpy.init(args=list(sys.argv if argv is None else argv))
    try:
        node = Node("operator")
        pub = node.create_publisher(EpisodeEvent, "teleop/events", qos.CONTROL)
        deadline = time.monotonic() + 10.0
        while pub.get_subscription_count() == 0:
            if time.monotonic() > deadline:
                print(
                    "operator: nothing subscribes to teleop/events (is the chunk executor running, on this "
                    "ROS_DOMAIN_ID?)",
                    file=sys.stderr,
                )
                return 1
            rclpy.spin_once(node, timeout_sec=0.1)
        stamp = node.get_clock().now().nanoseconds
        pub.publish(convert.event_to_msg(Event(Kind[args[0].upper()], detail="command line", stamp_ns=stamp)))
        # reliable: the sample stays until every matched reader acknowledged it, which also covers a reader that
        # had not yet matched this writer when it was sent (discovery is not symmetric); leaving earlier loses it
        if not pub.wait_for_all_acked(Duration(seconds=5.0)):
            print(f"operator: {args[0].upper()} not acknowledged within 5 s on {pub.topic_name}", file=sys.stderr)
            return 1
        print(f"operator: {args[0].upper()} sent on {pub.topic_name}")
        return 0
    finally:
        rclpy.try_shutdown()
