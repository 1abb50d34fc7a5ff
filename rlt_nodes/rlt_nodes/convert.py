"""The one translation layer between ROS 2 messages and the core's numpy arrays / `rlt.types` dataclasses.

Every message the stack uses goes through a `*_to_msg` / `*_from_msg` pair here, so nodes hold no conversion code.
Incoming messages are validated: a wrong shape, a size mismatch or a NaN raises `ValueError` naming the field.
`sensor_msgs/Image` uses the real `cv_bridge` when it imports (a ROS 2 install) and the numpy path otherwise (the
PyPI `cv-bridge` is a broken ROS 1 copy); both give the same result for the encodings used here.
"""

from __future__ import annotations

import importlib

import numpy as np
from builtin_interfaces.msg import Duration, Time
from rlt_msgs.msg import ActionChunk as ActionChunkMsg
from rlt_msgs.msg import ChunkRequest as ChunkRequestMsg
from rlt_msgs.msg import EpisodeEvent as EpisodeEventMsg
from rlt_msgs.msg import PolicyWeights as PolicyWeightsMsg
from rlt_msgs.msg import SimState as SimStateMsg
from rlt_msgs.msg import Tensor as TensorMsg
from rlt_msgs.msg import Transition as TransitionMsg
from rlt_msgs.msg import VlaOutput as VlaOutputMsg
from sensor_msgs.msg import CameraInfo, Image, JointState
from sensor_msgs.msg import Joy as JoyMsg
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from rlt.robot.executor import Command
from rlt.robot.imaging import Intrinsics
from rlt.types import (
    ActionChunk,
    ChunkRequest,
    EpisodeEvent,
    Joy,
    PolicyWeights,
    SimState,
    Transition,
    VlaOutput,
    as_array,
)


def _working_cv_bridge() -> object | None:
    """A real ROS 2 cv_bridge if one imports and round-trips an image; the PyPI ROS 1 copy fails that check."""
    try:
        from cv_bridge import CvBridge

        bridge = CvBridge()
        probe = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
        ok = np.array_equal(bridge.imgmsg_to_cv2(bridge.cv2_to_imgmsg(probe, encoding="rgb8")), probe)
    except Exception:
        return None
    return bridge if ok else None


_BRIDGE = _working_cv_bridge()

# encoding -> (dtype, channels)
IMAGE_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "mono8": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}


# ---------------------------------------------------------------------- time
def stamp_to_ns(stamp: Time) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def _header(stamp_ns: int, frame_id: str = "") -> Header:
    return Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)


def _floats(values: np.ndarray) -> np.ndarray:
    """float32 contiguous 1-D copy for a float32[] field (rclpy accepts ndarray there)."""
    return np.ascontiguousarray(values, dtype=np.float32).ravel()


def _view(name: str, field: object, size: int | None = None) -> np.ndarray:
    """Zero-copy float32 view of a received float32[] field, checked for size and NaN."""
    arr = np.frombuffer(field, dtype=np.float32) if not isinstance(field, np.ndarray) else field
    if size is not None and arr.size != size:
        raise ValueError(f"{name}: expected {size} values, got {arr.size}")
    return as_array(name, arr, 1)


# ---------------------------------------------------------------------- images
def image_to_msg(image: np.ndarray, encoding: str = "rgb8", stamp_ns: int = 0, frame_id: str = "") -> Image:
    """uint8[H, W, 3] (or [H, W] / [H, W, 1] for mono encodings) -> sensor_msgs/Image."""
    if encoding not in IMAGE_ENCODINGS:
        raise ValueError(f"Image.encoding: unsupported {encoding!r}; expected one of {sorted(IMAGE_ENCODINGS)}")
    dtype, channels = IMAGE_ENCODINGS[encoding]
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] != channels or arr.dtype != dtype:
        raise ValueError(
            f"Image.data: encoding {encoding} needs {dtype}[H, W, {channels}], got {arr.dtype}{list(arr.shape)}"
        )
    if _BRIDGE is not None:  # pragma: no cover - only with a real ROS 2 cv_bridge
        msg = _BRIDGE.cv2_to_imgmsg(np.ascontiguousarray(arr.squeeze()), encoding=encoding)
        msg.header = _header(stamp_ns, frame_id)
        return msg
    h, w, _ = arr.shape
    msg = Image(header=_header(stamp_ns, frame_id), height=h, width=w, encoding=encoding, is_bigendian=0)
    msg.step = w * channels * dtype.itemsize
    msg.data = np.ascontiguousarray(arr).tobytes()
    return msg


def image_from_msg(msg: Image, expect_encoding: str | None = None) -> np.ndarray:
    """sensor_msgs/Image -> array[H, W, C] (a zero-copy view for the numpy path)."""
    if expect_encoding is not None and msg.encoding != expect_encoding:
        raise ValueError(f"Image.encoding: expected {expect_encoding!r}, got {msg.encoding!r}")
    if msg.encoding not in IMAGE_ENCODINGS:
        raise ValueError(f"Image.encoding: unsupported {msg.encoding!r}; expected one of {sorted(IMAGE_ENCODINGS)}")
    dtype, channels = IMAGE_ENCODINGS[msg.encoding]
    if _BRIDGE is not None:  # pragma: no cover - only with a real ROS 2 cv_bridge
        return np.asarray(_BRIDGE.imgmsg_to_cv2(msg)).reshape(msg.height, msg.width, channels)
    row = msg.width * channels * dtype.itemsize
    if msg.step < row or len(msg.data) != msg.step * msg.height:
        raise ValueError(
            f"Image.data: {len(msg.data)} bytes do not fit height={msg.height} step={msg.step} "
            f"(width={msg.width}, {msg.encoding})"
        )
    buf = np.frombuffer(msg.data, dtype=np.uint8).reshape(msg.height, msg.step)[:, :row]
    arr = buf.view(dtype.newbyteorder(">" if msg.is_bigendian else "<")) if dtype.itemsize > 1 else buf
    return arr.reshape(msg.height, msg.width, channels)


def camera_info_to_msg(intr: Intrinsics, stamp_ns: int = 0, frame_id: str = "") -> CameraInfo:
    """Pinhole intrinsics -> sensor_msgs/CameraInfo (no rectification: R = I, P = [K | 0])."""
    k = intr.matrix()  # float64[3, 3]
    return CameraInfo(
        header=_header(stamp_ns, frame_id),
        height=intr.height,
        width=intr.width,
        distortion_model=intr.model,
        d=[float(c) for c in intr.coeffs],
        k=k.ravel().tolist(),
        r=np.eye(3).ravel().tolist(),
        p=np.hstack([k, np.zeros((3, 1))]).ravel().tolist(),
    )


def camera_info_from_msg(msg: CameraInfo) -> Intrinsics:
    k = np.asarray(msg.k, np.float64).reshape(3, 3)
    return Intrinsics(
        msg.width, msg.height, k[0, 0], k[1, 1], k[0, 2], k[1, 2], msg.distortion_model, tuple(float(c) for c in msg.d)
    )


# ---------------------------------------------------------------------- joint trajectory (ros2_control)
def _duration(seconds: float) -> Duration:
    ns = round(seconds * 1e9)
    return Duration(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def joint_trajectory_to_msg(joint_names: tuple[str, ...], command: Command, stamp_ns: int = 0) -> JointTrajectory:
    """Executor command -> trajectory_msgs/JointTrajectory; stamp 0 means "start on receipt" for the controller."""
    positions = np.asarray(command.positions, np.float64)  # float64[K, N]
    velocities = np.asarray(command.velocities, np.float64)  # float64[K, N]
    times = np.asarray(command.times_s, np.float64)  # float64[K]
    k = len(times)
    if positions.shape != (k, len(joint_names)) or velocities.shape != positions.shape:
        raise ValueError(
            f"JointTrajectory.points: positions {positions.shape} / velocities {velocities.shape} for {k} times "
            f"and joints {joint_names}"
        )
    if not (np.isfinite(positions).all() and np.isfinite(velocities).all() and np.isfinite(times).all()):
        raise ValueError("JointTrajectory.points: non-finite positions, velocities or times")
    points = [
        JointTrajectoryPoint(
            positions=positions[i].tolist(), velocities=velocities[i].tolist(), time_from_start=_duration(times[i])
        )
        for i in range(k)
    ]
    return JointTrajectory(header=_header(stamp_ns), joint_names=list(joint_names), points=points)


def joint_trajectory_from_msg(msg: JointTrajectory) -> tuple[tuple[str, ...], Command]:
    """-> (joint names, Command with positions/velocities float64[K, N] and times float64[K])."""
    n = len(msg.joint_names)
    positions = np.array([p.positions for p in msg.points], np.float64).reshape(-1, n)
    velocities = np.array([p.velocities if len(p.velocities) else [0.0] * n for p in msg.points], np.float64)
    times = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
    return tuple(msg.joint_names), Command(positions, velocities.reshape(-1, n), times)


# ---------------------------------------------------------------------- joint state / proprio
def joint_state_to_msg(
    names: tuple[str, ...], position: np.ndarray, velocity: np.ndarray | None = None, stamp_ns: int = 0
) -> JointState:
    position = as_array("JointState.position", position, 1, (len(names),))
    msg = JointState(header=_header(stamp_ns), name=list(names), position=position.astype(np.float64).tolist())
    if velocity is not None:
        velocity = as_array("JointState.velocity", velocity, 1, (len(names),))
        msg.velocity = velocity.astype(np.float64).tolist()
    return msg


def joint_state_from_msg(msg: JointState, names: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """-> (position float32[N], velocity float32[N]) in the order of `names` (default: the message's order)."""
    n = len(msg.name)
    if len(msg.position) != n or (len(msg.velocity) not in (0, n)):
        raise ValueError(f"JointState: {n} names but {len(msg.position)} positions and {len(msg.velocity)} velocities")
    pos = as_array("JointState.position", msg.position, 1)
    vel = as_array("JointState.velocity", msg.velocity, 1) if len(msg.velocity) else np.zeros(n, np.float32)
    if names is None:
        return pos, vel
    index = {k: i for i, k in enumerate(msg.name)}
    missing = [k for k in names if k not in index]
    if missing:
        raise ValueError(f"JointState.name: missing {missing}; message has {list(msg.name)}")
    order = [index[k] for k in names]
    return pos[order], vel[order]


def proprio_to_joint_state(names: tuple[str, ...], proprio: np.ndarray, stamp_ns: int = 0) -> JointState:
    """proprio float32[2N] = N positions then N velocities (the sim/robot proprio layout) -> JointState."""
    proprio = as_array("proprio", proprio, 1, (2 * len(names),))
    return joint_state_to_msg(names, proprio[: len(names)], proprio[len(names) :], stamp_ns)


def proprio_from_joint_state(msg: JointState, names: tuple[str, ...]) -> np.ndarray:
    """JointState -> proprio float32[2N] (positions of `names`, then their velocities)."""
    position, velocity = joint_state_from_msg(msg, names)
    return np.concatenate([position, velocity])


# ---------------------------------------------------------------------- rlt_msgs
def chunk_to_msg(chunk: ActionChunk) -> ActionChunkMsg:
    return ActionChunkMsg(
        header=_header(chunk.stamp_ns, chunk.frame_id),
        chunk_id=chunk.chunk_id,
        source=int(chunk.source),
        policy_version=chunk.policy_version,
        vla_stamp=ns_to_stamp(chunk.vla_ns),
        sent_stamp=ns_to_stamp(chunk.sent_ns),
        axis_names=list(chunk.axis_names),
        chunk_len=chunk.chunk_len,
        data=_floats(chunk.data),
    )


def chunk_from_msg(msg: ActionChunkMsg) -> ActionChunk:
    d = len(msg.axis_names)
    if d == 0:
        raise ValueError("ActionChunk.axis_names: empty; expected one name per action column")
    data = _view("ActionChunk.data", msg.data, msg.chunk_len * d).reshape(msg.chunk_len, d)
    return ActionChunk(
        data=data,
        axis_names=tuple(msg.axis_names),
        source=msg.source,
        chunk_id=msg.chunk_id,
        stamp_ns=stamp_to_ns(msg.header.stamp),
        frame_id=msg.header.frame_id,
        policy_version=msg.policy_version,
        vla_ns=stamp_to_ns(msg.vla_stamp),
        sent_ns=stamp_to_ns(msg.sent_stamp),
    )


def request_to_msg(req: ChunkRequest) -> ChunkRequestMsg:
    return ChunkRequestMsg(
        header=_header(req.stamp_ns),
        episode_id=req.episode_id,
        step=req.step,
        phase=int(req.phase),
        need_chunk=req.need_chunk,
        terminal=int(req.terminal),
        axis_names=list(req.axis_names),
        executed=_floats(req.executed),
        sources=bytes(int(x) for x in req.sources),
        rewards=_floats(req.rewards),
    )


def request_from_msg(msg: ChunkRequestMsg) -> ChunkRequest:
    d = len(msg.axis_names)
    if d == 0:
        raise ValueError("ChunkRequest.axis_names: empty; expected one name per action column")
    n = len(msg.sources)
    try:
        return ChunkRequest(
            episode_id=msg.episode_id,
            step=msg.step,
            axis_names=tuple(msg.axis_names),
            phase=msg.phase,
            need_chunk=msg.need_chunk,
            terminal=msg.terminal,
            executed=_view("ChunkRequest.executed", msg.executed, n * d).reshape(n, d),
            sources=tuple(bytes(msg.sources)),
            rewards=_view("ChunkRequest.rewards", msg.rewards, n),
            stamp_ns=stamp_to_ns(msg.header.stamp),
        )
    except ValueError as exc:
        if "ChunkRequest." in str(exc):
            raise
        raise ValueError(f"ChunkRequest.phase/terminal/sources: {exc}") from exc


def vla_output_to_msg(out: VlaOutput) -> VlaOutputMsg:
    return VlaOutputMsg(
        header=_header(out.stamp_ns),
        request=request_to_msg(out.request),
        model_id=out.model_id,
        reference=chunk_to_msg(out.reference),
        rl_token=_floats(out.rl_token),
        proprio=_floats(out.proprio),
    )


def vla_output_from_msg(msg: VlaOutputMsg) -> VlaOutput:
    return VlaOutput(
        request=request_from_msg(msg.request),
        reference=chunk_from_msg(msg.reference),
        rl_token=_view("VlaOutput.rl_token", msg.rl_token),
        proprio=_view("VlaOutput.proprio", msg.proprio),
        model_id=msg.model_id,
        stamp_ns=stamp_to_ns(msg.header.stamp),
    )


def sim_state_to_msg(state: SimState) -> SimStateMsg:
    return SimStateMsg(
        header=_header(state.stamp_ns),
        episode_id=state.episode_id,
        step=state.step,
        qpos=np.ascontiguousarray(state.qpos, np.float64),
        mocap=np.ascontiguousarray(state.mocap, np.float64),
        params=np.ascontiguousarray(state.params, np.float64),
    )


def sim_state_from_msg(msg: SimStateMsg) -> SimState:
    return SimState(
        episode_id=msg.episode_id,
        step=msg.step,
        qpos=np.asarray(msg.qpos, np.float64),
        mocap=np.asarray(msg.mocap, np.float64),
        params=np.asarray(msg.params, np.float64),
        stamp_ns=stamp_to_ns(msg.header.stamp),
    )


def transition_to_msg(t: Transition) -> TransitionMsg:
    """header.frame_id carries `stream_id` (decimal): the message has no field of its own for it."""
    c, d = t.action.shape
    return TransitionMsg(
        header=_header(t.stamp_ns, str(t.stream_id)),
        episode_id=t.episode_id,
        step=t.step,
        chunk_len=c,
        action_dim=d,
        rl_token=_floats(t.rl_token),
        proprio=_floats(t.proprio),
        action=_floats(t.action),
        reference=_floats(t.reference),
        rewards=_floats(t.rewards),
        done=t.done,
        intervened=t.intervened,
        next_rl_token=_floats(t.next_rl_token),
        next_proprio=_floats(t.next_proprio),
        next_reference=_floats(t.next_reference),
    )


def transition_from_msg(msg: TransitionMsg) -> Transition:
    c, d = msg.chunk_len, msg.action_dim
    if c == 0 or d == 0:
        raise ValueError(f"Transition.chunk_len/action_dim: must be > 0, got {c}/{d}")

    def chunk(name: str, field: object) -> np.ndarray:
        return _view(f"Transition.{name}", field, c * d).reshape(c, d)

    return Transition(
        rl_token=_view("Transition.rl_token", msg.rl_token),
        proprio=_view("Transition.proprio", msg.proprio),
        action=chunk("action", msg.action),
        reference=chunk("reference", msg.reference),
        rewards=_view("Transition.rewards", msg.rewards, c),
        done=msg.done,
        intervened=msg.intervened,
        next_rl_token=_view("Transition.next_rl_token", msg.next_rl_token),
        next_proprio=_view("Transition.next_proprio", msg.next_proprio),
        next_reference=chunk("next_reference", msg.next_reference),
        episode_id=msg.episode_id,
        step=msg.step,
        stamp_ns=stamp_to_ns(msg.header.stamp),
        stream_id=_stream_id(msg.header.frame_id),
    )


def _stream_id(frame_id: str) -> int:
    if not frame_id:
        return 0
    if not frame_id.isdigit() or int(frame_id) >= 1 << 63:
        raise ValueError(f"Transition.header.frame_id: {frame_id!r}, expected the actor's stream id (decimal int64)")
    return int(frame_id)


def weights_to_msg(w: PolicyWeights) -> PolicyWeightsMsg:
    tensors = [TensorMsg(name=k, shape=list(v.shape), data=_floats(v)) for k, v in w.tensors.items()]
    return PolicyWeightsMsg(
        header=_header(w.stamp_ns),
        version=w.version,
        learner_step=w.learner_step,
        architecture=w.architecture,
        tensors=tensors,
    )


def weights_from_msg(msg: PolicyWeightsMsg) -> PolicyWeights:
    tensors = {}
    for t in msg.tensors:
        shape = tuple(int(s) for s in t.shape)
        tensors[t.name] = _view(f"PolicyWeights.tensors[{t.name!r}]", t.data, int(np.prod(shape))).reshape(shape)
    return PolicyWeights(
        version=msg.version,
        tensors=tensors,
        learner_step=msg.learner_step,
        architecture=msg.architecture,
        stamp_ns=stamp_to_ns(msg.header.stamp),
    )


def event_to_msg(e: EpisodeEvent) -> EpisodeEventMsg:
    return EpisodeEventMsg(
        header=_header(e.stamp_ns), episode_id=e.episode_id, event=int(e.event), step=e.step, detail=e.detail
    )


def event_from_msg(msg: EpisodeEventMsg) -> EpisodeEvent:
    try:
        return EpisodeEvent(
            event=msg.event,
            episode_id=msg.episode_id,
            step=msg.step,
            detail=msg.detail,
            stamp_ns=stamp_to_ns(msg.header.stamp),
        )
    except ValueError as exc:
        raise ValueError(f"EpisodeEvent.event: unknown value {msg.event}") from exc


# ---------------------------------------------------------------------- joystick
def joy_to_msg(joy: Joy) -> JoyMsg:
    return JoyMsg(header=_header(joy.stamp_ns, joy.frame_id), axes=_floats(joy.axes), buttons=list(joy.buttons))


def joy_from_msg(msg: JoyMsg) -> Joy:
    return Joy(
        axes=_view("Joy.axes", msg.axes),
        buttons=tuple(msg.buttons),
        stamp_ns=stamp_to_ns(msg.header.stamp),
        frame_id=msg.header.frame_id,
    )


# ---------------------------------------------------------------------- message types by name (recorder, player)
def message_class(msgtype: str) -> type:
    """'sensor_msgs/msg/Image' -> the generated class; ValueError when its package is not installed."""
    package, kind, name = [*msgtype.split("/"), "", ""][:3]
    try:
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"message type {msgtype!r}: no generated Python class ({exc})") from exc
