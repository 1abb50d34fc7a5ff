"""launch/config/robot.yaml through rcl's own params-file parser (stricter YAML than PyYAML: `y` is a bool there)."""

import pytest
import rclpy
from rclpy.context import Context

from rlt.app.launch import LAUNCH_DIR
from rlt_nodes.chunk_executor_node import ChunkExecutorNode

pytestmark = pytest.mark.ros


def test_robot_params_parse_and_configure_the_executor(ros_domain):
    context = Context()
    args = ["--ros-args", "-r", "__node:=chunk_executor", "--params-file", str(LAUNCH_DIR / "config" / "robot.yaml")]
    rclpy.init(context=context, domain_id=ros_domain, args=args)
    try:
        node = ChunkExecutorNode(context=context)
        assert node.core.cfg.joint_names == ("x", "y", "z", "yaw", "pitch", "roll")
        assert node.core.safety.workspace_max == (0.15, 0.15, 0.25, 1.6)
        assert node.get_parameter("controller_topic").value == "joint_trajectory_controller/joint_trajectory"
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
