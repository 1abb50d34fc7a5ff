"""ros2 launch file of the rehearsal session (the robot session against sim_arm); nodes and parameters:
launch/sessions.yaml."""

from rlt_nodes.launch_description import describe


def generate_launch_description():
    return describe("rehearsal")
