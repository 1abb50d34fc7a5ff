"""The core package `rlt` must import no ROS 2 code: it runs and is tested without ROS."""

import subprocess
import sys
from pathlib import Path

import rlt

CHECK = """
import importlib, pkgutil, sys
import rlt
for info in pkgutil.walk_packages(rlt.__path__, "rlt."):
    importlib.import_module(info.name)
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("rclpy", "rlt_nodes") or m.split(".")[0].endswith("_msgs"))
print(len([m for m in sys.modules if m.startswith("rlt.")]))
assert not bad, f"the core imported ROS modules: {bad}"
"""


def test_core_imports_no_ros():
    root = Path(rlt.__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", CHECK],
        capture_output=True,
        text=True,
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "MUJOCO_GL": "egl"},
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) >= 3  # it really walked the submodules
