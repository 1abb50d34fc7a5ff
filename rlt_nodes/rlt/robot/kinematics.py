"""Kinematics seam of the chunk executor: joint positions q[N] <-> the end-effector pose p = (x, y, z, yaw).

Actions are end-effector deltas (dx, dy, dz, dyaw per control step, in the robot base frame); a ros2_control
`joint_trajectory_controller` wants joint positions. `Kinematics` is the interface the executor needs:
`forward(q)` (for the workspace box) and `jacobian(q)` (to turn an EE delta into a joint delta by damped least
squares, `ee_to_joint_delta`). Two implementations ship:

- `LinearKinematics` (the default, `ExecutorConfig.kinematics = "linear"`): p = A q + b with a constant A[4, N]
  and b[4] from the config. It is exact for Cartesian robots (gantries, the sim's x/y/z/yaw joints) and a
  local, first-order approximation for an articulated arm around the configuration A was measured at: there the
  pseudo-inverse step is only right near that pose, and the workspace box is only as good as A. Use it on an
  arm for small workspaces, or plug in real kinematics:
- any class reachable as `"package.module:ClassName"`, constructed as `ClassName(joint_names)` and implementing
  this interface (e.g. a wrapper around your URDF solver). The executor's safety checks still apply to it.
"""

from __future__ import annotations

import abc
import importlib

import numpy as np

EE_AXES: tuple[str, ...] = ("x", "y", "z", "yaw")  # the pose coordinates the action axes dx, dy, dz, dyaw move


class Kinematics(abc.ABC):
    """Forward map and Jacobian of the pose p = (x, y, z, yaw) the actions move."""

    def __init__(self, joint_names: tuple[str, ...]) -> None:
        self.joint_names = tuple(joint_names)

    @abc.abstractmethod
    def forward(self, q: np.ndarray) -> np.ndarray:
        """q float64[N] -> p float64[4] (m, m, m, rad) in the robot base frame."""

    @abc.abstractmethod
    def jacobian(self, q: np.ndarray) -> np.ndarray:
        """dp/dq at q: float64[4, N]."""

    def ee_to_joint_delta(self, q: np.ndarray, dp: np.ndarray, damping: float = 1e-4) -> np.ndarray:
        """Joint step dq float64[N] that best realizes the pose step dp float64[4] (damped least squares)."""
        jac = self.jacobian(q)  # float64[4, N]
        return jac.T @ np.linalg.solve(jac @ jac.T + damping**2 * np.eye(jac.shape[0]), dp)


class LinearKinematics(Kinematics):
    """p = A q + b with constant A[4, N] (row-major in the config) and b[4]; see the module docstring."""

    def __init__(self, joint_names: tuple[str, ...], matrix: np.ndarray, offset: np.ndarray) -> None:
        super().__init__(joint_names)
        n = len(self.joint_names)
        self.matrix = np.asarray(matrix, np.float64).reshape(len(EE_AXES), n)  # float64[4, N]
        self.offset = np.asarray(offset, np.float64).reshape(len(EE_AXES))  # float64[4]
        if np.linalg.matrix_rank(self.matrix) < len(EE_AXES):
            raise ValueError(
                f"LinearKinematics: the map from joints {self.joint_names} to {EE_AXES} has rank "
                f"{np.linalg.matrix_rank(self.matrix)} < 4, so some action axes cannot be realized"
            )

    def forward(self, q: np.ndarray) -> np.ndarray:
        return self.matrix @ np.asarray(q, np.float64) + self.offset

    def jacobian(self, q: np.ndarray) -> np.ndarray:
        return self.matrix


def load_kinematics(
    spec: str, joint_names: tuple[str, ...], matrix: tuple[float, ...], offset: tuple[float, ...]
) -> Kinematics:
    """Kinematics named by `spec`: "linear" (matrix, offset) or "pkg.module:Class", built as Class(joint_names)."""
    if spec == "linear":
        return LinearKinematics(joint_names, np.asarray(matrix), np.asarray(offset))
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"ExecutorConfig.kinematics={spec!r}: expected 'linear' or 'package.module:ClassName'")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"ExecutorConfig.kinematics={spec!r}: cannot load it ({exc})") from exc
    if not (isinstance(cls, type) and issubclass(cls, Kinematics)):
        raise ValueError(f"ExecutorConfig.kinematics={spec!r}: {cls!r} is not a rlt.robot.kinematics.Kinematics")
    return cls(tuple(joint_names))
