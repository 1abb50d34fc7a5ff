"""On-robot deployment core, free of ROS: RealSense frame handling, kinematics, safety limits and the chunk executor.

`rlt_nodes.realsense_node` and `rlt_nodes.chunk_executor_node` wrap these modules; everything that decides what a
real arm does (clamps, workspace, velocity limits, watchdog) lives here and is tested without ROS or hardware.
"""
