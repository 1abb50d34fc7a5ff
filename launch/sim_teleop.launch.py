"""ros2 launch file of the sim_teleop session; nodes and parameters: launch/sessions.yaml (see rlt.app.launch)."""

from rlt_nodes.launch_description import describe


def generate_launch_description():
    return describe("sim_teleop")
