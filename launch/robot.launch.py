"""ros2 launch file of the robot session; nodes and parameters: launch/sessions.yaml (see rlt.app.launch)."""

from rlt_nodes.launch_description import describe


def generate_launch_description():
    return describe("robot")
