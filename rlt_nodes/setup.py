"""ament_python package `rlt_nodes`: ships the pure core `rlt` and the thin ROS 2 nodes `rlt_nodes`."""

from setuptools import find_packages, setup

PACKAGE = "rlt_nodes"
NODES = ["sim_driver", "sim_camera", "vla", "actor", "learner", "realsense", "chunk_executor", "operator"]
NODES += ["joystick", "teleop", "sim_human", "bag_recorder", "bag_player"]  # teleop and bags
NODES += ["sim_arm"]  # the rehearsal: a simulated ros2_control arm with cameras
NODES += ["foxglove_bridge"]  # the optional live view in Foxglove

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=["rlt", "rlt.*", "rlt_nodes", "rlt_nodes.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="RLT developers",
    maintainer_email="dev@rlt.local",
    description="RL tokens (RLT) on ROS 2: pure core and thin nodes",
    license="Apache-2.0",
    entry_points={
        "console_scripts": ["rlt = rlt.cli:main"] + [f"{n} = {PACKAGE}.{n}_node:main" for n in NODES],
    },
)
