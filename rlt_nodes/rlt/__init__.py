"""RL tokens (RLT) core: simulator, models, online RL and configs, free of any ROS dependency.

Everything here runs and is tested without ROS 2. The ROS 2 nodes in `rlt_nodes` wrap it; this package must
never import rclpy, a message package or `rlt_nodes` (a test enforces it).
"""

__version__ = "0.1.0"
