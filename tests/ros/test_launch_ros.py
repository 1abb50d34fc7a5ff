"""The launch files with the real `launch` / `launch_ros` packages, wherever they are importable (a system ROS 2
install, the Docker image; not PyPI): each loads, declares the session's arguments and holds one launch_ros Node per
`rlt launch` process, with the same executables, names and parameter files.

tests/core/test_launch.py checks the same agreement everywhere with recording stand-ins for the packages.
"""

import pytest

from rlt.app.launch import FOXGLOVE_BRIDGE, LAUNCH_DIR, load_session

pytestmark = pytest.mark.ros
launch = pytest.importorskip("launch", reason="launch (ros2 launch) is not installable from PyPI")
launch_ros = pytest.importorskip("launch_ros", reason="launch_ros is not installable from PyPI")
from launch.launch_description_sources import get_launch_description_from_python_launch_file  # noqa: E402
from launch_ros.actions import Node  # noqa: E402

LAUNCH_FILES = sorted(LAUNCH_DIR.glob("*.launch.py"))


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_loads_with_launch_ros(path):
    session = load_session(path.name.removesuffix(".launch.py"))
    description = get_launch_description_from_python_launch_file(str(path))
    declared = {a.name: a.default_value for a in description.get_launch_arguments()}
    assert set(declared) == {a.name for a in session.arguments}
    context = launch.LaunchContext()
    for name, value in declared.items():
        context.launch_configurations[name] = launch.utilities.perform_substitutions(context, value)
    nodes = [e for e in description.entities if isinstance(e, Node)]
    assert [(n.node_package, n.node_executable) for n in nodes] == [
        ("rlt_nodes", spec.executable) for spec in (*session.nodes, FOXGLOVE_BRIDGE)
    ]
    skipped = [n.condition is not None and not n.condition.evaluate(context) for n in nodes]
    assert skipped == [False] * len(session.nodes) + [True]  # the Foxglove bridge only with foxglove:=true
    assert context.launch_configurations["params_file"] == str(session.params_file)
