"""ros2 launch file of the robot_split session; nodes and parameters: launch/sessions.yaml (see rlt.app.launch)."""

from rlt_nodes.launch_description import describe


def generate_launch_description():
    return describe("robot_split")
