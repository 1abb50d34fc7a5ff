"""Test helper process: publish N ActionChunk messages at a fixed rate once a subscriber is matched.

Usage: publish_chunks.py COUNT RATE_HZ  (ROS_DOMAIN_ID from the environment). Chunk k holds k + i * 1e-3.
"""

import sys
import time

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rlt_msgs.msg import ActionChunk as ActionChunkMsg

from rlt.types import ActionChunk, Source
from rlt_nodes.convert import chunk_to_msg


def main() -> int:
    count, rate = int(sys.argv[1]), float(sys.argv[2])
    rclpy.init()
    node = Node("chunk_publisher")
    pub = node.create_publisher(
        ActionChunkMsg, "action_chunk", QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    )
    deadline = time.monotonic() + 20
    while pub.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            print("no subscriber matched", file=sys.stderr)
            return 1
        rclpy.spin_once(node, timeout_sec=0.02)
    period = 1.0 / rate
    start = time.monotonic()
    for k in range(count):
        data = k + np.arange(40, dtype=np.float32).reshape(10, 4) * 1e-3
        chunk = ActionChunk(
            data=data, axis_names=("dx", "dy", "dz", "dyaw"), source=Source.ACTOR, chunk_id=k, stamp_ns=time.time_ns()
        )
        pub.publish(chunk_to_msg(chunk))
        time.sleep(max(0.0, start + (k + 1) * period - time.monotonic()))
    # stay alive until the reliable writer has delivered everything
    pub.wait_for_all_acked(rclpy.duration.Duration(seconds=10))
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
