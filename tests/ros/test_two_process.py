"""Two processes over DDS on a private domain: every ActionChunk published at 50 Hz arrives intact."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rlt_msgs.msg import ActionChunk as ActionChunkMsg

from rlt_nodes.convert import chunk_from_msg

pytestmark = pytest.mark.ros
HELPER = Path(__file__).parent / "helpers" / "publish_chunks.py"


def test_action_chunks_cross_processes_intact(ros):
    received = []
    node = ros.node("chunk_listener")
    node.create_subscription(
        ActionChunkMsg,
        "action_chunk",
        lambda m: received.append(chunk_from_msg(m)),
        QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE),
    )
    count = 100
    proc = subprocess.Popen([sys.executable, str(HELPER), str(count), "50"], env=ros.env())
    try:
        ros.spin_until(lambda: len(received) >= count or proc.poll() not in (None, 0), 30, f"{count} chunks")
    finally:
        proc.wait(timeout=20)
    assert proc.returncode == 0
    assert [c.chunk_id for c in received] == list(range(count))
    for chunk in received:
        expected = chunk.chunk_id + np.arange(40, dtype=np.float32).reshape(10, 4) * 1e-3
        np.testing.assert_array_equal(chunk.data, expected)
        assert chunk.axis_names == ("dx", "dy", "dz", "dyaw")
