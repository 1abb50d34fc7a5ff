"""MJCF text of the peg-in-hole scene: a 6-DoF gantry holding a rectangular peg above a socket.

This module owns the scene geometry (peg, hole, chamfer, cameras, physics options) and the names other modules
look up (joints, bodies, sites, cameras). It produces XML text only; compiling and stepping the model is
`rlt.sim.env`'s job, so importing this module does not import MuJoCo.

Frames: the world z axis points up. The gantry joints are world-aligned, so the joint positions (x, y, z, yaw,
pitch, roll) are the pose of the hand frame in the world. The `hole` site sits at the centre of the hole opening
at rim height, with z pointing up (out of the hole); the `peg_tip` site at the centre of the peg's bottom face.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

# Peg: 12 x 8 x 40 mm box (RJ45-like: 180-degree symmetric, so yaw matters modulo pi).
PEG_HALF_SIZE: tuple[float, float, float] = (0.006, 0.004, 0.020)  # m, half extents along hand x, y, z
PEG_BODY_OFFSET = 0.024  # m, peg centre below the hand frame
PEG_TIP_BELOW_HAND = PEG_BODY_OFFSET + PEG_HALF_SIZE[2]  # m, peg tip below the hand frame (in-hand offset = 0)

HOLE_DEPTH = 0.020  # m, rim to socket floor
WALL_THICKNESS = 0.010  # m
FLOOR_THICKNESS = 0.010  # m
RIM_HEIGHT = FLOOR_THICKNESS + HOLE_DEPTH  # m, world z of the hole opening (the socket sits on the ground)
CHAMFER_THICKNESS = 0.002  # m, the lead-in strips are thin boxes tilted 45 degrees

JOINT_NAMES: tuple[str, ...] = ("x", "y", "z", "yaw", "pitch", "roll")  # also the actuator names
CAMERA_NAMES: tuple[str, ...] = ("front", "wrist")
SOCKET_BODY = "socket"
PEG_BODY = "peg"
HOLE_SITE = "hole"
TIP_SITE = "peg_tip"


@dataclasses.dataclass(frozen=True)
class _Drive:
    """Joint and position-servo parameters of one joint class (SI units: N, m, rad, kg)."""

    damping: float  # joint damping, N s/m or N m s/rad
    armature: float  # reflected rotor inertia, kg or kg m^2
    kp: float  # servo stiffness, N/m or N m/rad (critically damped)
    force: float  # servo force (torque) limit, N or N m


# Position servos with force limits, so contact forces stay bounded (at most 20 N at the 1 cm target lead the env
# allows). The armatures stand for the reflected inertia of a real arm: with light ones (0.1 kg, 0.002 kg m^2) the
# peg rattles in the hole and stick-slip releases on the chamfer hit hard enough to penetrate 0.05-0.17 mm. Pitch
# and roll are stiff so that the peg stays vertical.
_DRIVES: dict[str, _Drive] = {
    "slide": _Drive(damping=20.0, armature=1.0, kp=2000.0, force=25.0),
    "yaw": _Drive(damping=0.5, armature=0.02, kp=20.0, force=2.0),
    "tilt": _Drive(damping=2.5, armature=0.1, kp=100.0, force=10.0),
}
_FRICTION = 0.5  # sliding friction of every contact (plastic peg on socket); < 1, so the 45-degree chamfer slides
_JOINTS: dict[str, tuple[str, str, str]] = {  # joint name -> (joint type, drive class, axis)
    "x": ("slide", "slide", "1 0 0"),
    "y": ("slide", "slide", "0 1 0"),
    "z": ("slide", "slide", "0 0 1"),
    "yaw": ("hinge", "yaw", "0 0 1"),
    "pitch": ("hinge", "tilt", "0 1 0"),
    "roll": ("hinge", "tilt", "1 0 0"),
}


def hole_half_size(clearance: float) -> tuple[float, float]:
    """Half extents (x, y) of the hole opening in m for a total clearance `clearance` (m) per axis."""
    return PEG_HALF_SIZE[0] + clearance / 2, PEG_HALF_SIZE[1] + clearance / 2


def scene_xml(clearance: float, chamfer: float, dt: float, image_size: int, wrist_fovy: float) -> str:
    """MJCF of the scene.

    Args:
        clearance: total hole-minus-peg width per axis, m (0.5 mm = 0.25 mm per side).
        chamfer: size of the 45-degree lead-in above the rim, m (0 = sharp edge).
        dt: physics time step, s; contacts use solref time constant 2 * dt.
        image_size: offscreen buffer size in pixels (square images).
        wrist_fovy: vertical field of view of the hand-mounted camera, degrees.
    """
    size = max(image_size, 64)
    return f"""<mujoco model="peg_insert">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{dt}" integrator="implicitfast" cone="elliptic"/>
  <visual>
    <quality shadowsize="0"/>
    <global offwidth="{size}" offheight="{size}"/>
  </visual>
  <default>
    <geom solref="{2 * dt} 1" solimp="0.95 0.99 0.001" friction="{_FRICTION} 0.005 0.0001"/>
    <default class="socket">
      <geom type="box" rgba="0.8 0.5 0.2 1"/>
    </default>
{_drive_defaults()}
  </default>
  <worldbody>
    <light name="top" pos="0 -0.3 1" dir="0 0.3 -1"/>
    <geom name="ground" type="plane" size="0.5 0.5 0.01" rgba="0.85 0.85 0.85 1"/>
    <camera name="front" {_look_at((0.0, -0.16, 0.15), (0.0, 0.0, 0.05))} fovy="40"/>
    <body name="{SOCKET_BODY}" mocap="true" pos="0 0 {RIM_HEIGHT}">
{_socket_geoms(clearance, chamfer)}
      <site name="{HOLE_SITE}" size="0.001"/>
    </body>
{_gantry(wrist_fovy)}
  </worldbody>
  <actuator>
{_actuators()}
  </actuator>
</mujoco>
"""


def _socket_geoms(clearance: float, chamfer: float) -> str:
    """Four walls, a floor and (if chamfer > 0) four 45-degree lead-in strips, in the socket frame (rim at z=0)."""
    hx, hy = hole_half_size(clearance)
    t, half_depth = WALL_THICKNESS, HOLE_DEPTH / 2
    boxes = [
        ("wall_px", (t / 2, hy + t, half_depth), (hx + t / 2, 0, -half_depth), (0, 0, 0)),
        ("wall_nx", (t / 2, hy + t, half_depth), (-hx - t / 2, 0, -half_depth), (0, 0, 0)),
        ("wall_py", (hx, t / 2, half_depth), (0, hy + t / 2, -half_depth), (0, 0, 0)),
        ("wall_ny", (hx, t / 2, half_depth), (0, -hy - t / 2, -half_depth), (0, 0, 0)),
        ("floor", (hx + t, hy + t, FLOOR_THICKNESS / 2), (0, 0, -HOLE_DEPTH - FLOOR_THICKNESS / 2), (0, 0, 0)),
    ]
    if chamfer > 0:
        # Each strip's inner face runs from the hole edge at rim height to `chamfer` outwards and upwards.
        half_len, half_thick = chamfer * math.sqrt(0.5), CHAMFER_THICKNESS / 2
        shift = half_thick * math.sqrt(0.5)  # moves the centre so that the inner face (not the centre) is on the slope
        mid, up = chamfer / 2 + shift, chamfer / 2 - shift
        quarter = math.pi / 4
        boxes += [
            ("chamfer_px", (half_len, hy + t, half_thick), (hx + mid, 0, up), (0, -quarter, 0)),
            ("chamfer_nx", (half_len, hy + t, half_thick), (-hx - mid, 0, up), (0, quarter, 0)),
            ("chamfer_py", (hx + t, half_len, half_thick), (0, hy + mid, up), (quarter, 0, 0)),
            ("chamfer_ny", (hx + t, half_len, half_thick), (0, -hy - mid, up), (-quarter, 0, 0)),
        ]
    return "\n".join(
        f'      <geom name="socket_{name}" class="socket" size="{_vec(size)}" pos="{_vec(pos)}" euler="{_vec(euler)}"/>'
        for name, size, pos, euler in boxes
    )


def _drive_defaults() -> str:
    return "\n".join(
        f'    <default class="{name}">\n'
        f'      <joint damping="{drive.damping}" armature="{drive.armature}"/>\n'
        f'      <position kp="{drive.kp}" dampratio="1" forcerange="{-drive.force} {drive.force}"/>\n'
        "    </default>"
        for name, drive in _DRIVES.items()
    )


def _actuators() -> str:
    return "\n".join(f'    <position name="{n}" joint="{n}" class="{_JOINTS[n][1]}"/>' for n in JOINT_NAMES)


def _gantry(wrist_fovy: float) -> str:
    """Nested x, y, z, yaw, pitch, roll bodies; the innermost is the hand, which carries the peg and wrist camera."""
    opening, closing = [], []
    for depth, name in enumerate(JOINT_NAMES):
        joint_type, drive, axis = _JOINTS[name]
        indent = "    " + "  " * depth
        opening.append(
            f'{indent}<body name="gantry_{name}" gravcomp="1">\n'
            f'{indent}  <joint name="{name}" type="{joint_type}" class="{drive}" axis="{axis}"/>\n'
            f'{indent}  <inertial pos="0 0 0" mass="0.3" diaginertia="1e-3 1e-3 1e-3"/>'
        )
        closing.insert(0, f"{indent}</body>")
    indent = "    " + "  " * len(JOINT_NAMES)
    hand = (
        f'{indent}<geom name="hand" type="box" size="0.02 0.015 0.006" pos="0 0 0.006" rgba="0.3 0.3 0.3 1"/>\n'
        f'{indent}<camera name="wrist" {_look_at((-0.05, -0.03, 0.0), (0.0, 0.0, -0.05))} fovy="{wrist_fovy:g}"/>\n'
        f'{indent}<body name="{PEG_BODY}" pos="0 0 {-PEG_BODY_OFFSET}">\n'
        f'{indent}  <geom name="peg" type="box" size="{_vec(PEG_HALF_SIZE)}" mass="0.02" rgba="0.1 0.4 0.9 1"/>\n'
        f'{indent}  <site name="{TIP_SITE}" pos="0 0 {-PEG_HALF_SIZE[2]}" size="0.001"/>\n'
        f"{indent}</body>"
    )
    return "\n".join([*opening, hand, *closing])


def _look_at(eye: tuple[float, float, float], target: tuple[float, float, float]) -> str:
    """MJCF camera attributes placing a camera at `eye` looking at `target`, with the image up roughly +z."""
    back = np.subtract(eye, target)
    back /= np.linalg.norm(back)
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    return f'pos="{_vec(eye)}" xyaxes="{_vec((*right, *up))}"'


def _vec(values: tuple[float, ...] | np.ndarray) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)
