"""Build a `ros2 launch` description from launch/sessions.yaml, the file `rlt launch` reads too.

Every `launch/<session>.launch.py` is two lines that call `describe(<session>)`, so the launch files and the
pip-only runner cannot drift apart: same executables, node names, parameter file and arguments. The Foxglove bridge
(`FOXGLOVE_BRIDGE`) joins any session when its argument `foxglove` is true, as `rlt launch --foxglove`.
"""

from __future__ import annotations

from launch.actions import DeclareLaunchArgument, Shutdown
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from rlt.app.launch import FOXGLOVE_BRIDGE, PACKAGE, RESPAWN_DELAY_S, NodeSpec, load_session


def describe(session_name: str) -> LaunchDescription:
    session = load_session(session_name)
    actions: list = [
        DeclareLaunchArgument(a.name, default_value=a.default, description=a.description) for a in session.arguments
    ]
    base = [str(path) for path in session.base_params]  # under the session's own file, as `rlt launch` passes them
    actions += [_node(node, base) for node in session.nodes]
    actions.append(_node(FOXGLOVE_BRIDGE, base, condition=IfCondition(LaunchConfiguration("foxglove"))))
    return LaunchDescription(actions)


def _node(node: NodeSpec, base_params: list[str], condition: IfCondition | None = None) -> Node:
    env = {"OMP_NUM_THREADS": str(node.threads), "RLT_TORCH_THREADS": str(node.threads)} if node.threads else None
    return Node(
        package=PACKAGE,
        executable=node.executable,
        name=node.name,
        namespace=LaunchConfiguration("namespace"),
        parameters=[*base_params, LaunchConfiguration("params_file"), *([dict(node.params)] if node.params else [])],
        remappings=list(node.remap),
        additional_env=env,
        output="screen",
        on_exit=Shutdown(reason=f"required node {node.name} exited") if node.required else None,
        respawn=not node.required,  # as `rlt launch`: the session outlives the death of any other node
        respawn_delay=RESPAWN_DELAY_S[0],
        condition=condition,
    )
