"""ros2 launch file of the robot_learner session (the GPU box); nodes and parameters: launch/sessions.yaml."""

from rlt_nodes.launch_description import describe


def generate_launch_description():
    return describe("robot_learner")
