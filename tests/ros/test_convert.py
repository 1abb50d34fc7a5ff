"""Every message round-trips through rlt_nodes.convert; bad input names the offending field."""

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from rlt_msgs.msg import ActionChunk as ActionChunkMsg
from rlt_msgs.msg import Transition as TransitionMsg
from sensor_msgs.msg import Image, JointState

from rlt.types import (
    ActionChunk,
    ChunkRequest,
    EpisodeEvent,
    Event,
    Phase,
    PolicyWeights,
    SimState,
    Source,
    Terminal,
    Transition,
    VlaOutput,
)
from rlt_nodes import convert

pytestmark = pytest.mark.ros
RNG = np.random.default_rng(0)
AXES = ("dx", "dy", "dz", "dyaw")


def wire(msg):
    """Serialize and deserialize, as DDS would."""
    return deserialize_message(serialize_message(msg), type(msg))


def chunk(c=10, source=Source.ACTOR):
    return ActionChunk(
        RNG.normal(size=(c, 4)).astype(np.float32),
        AXES,
        source,
        chunk_id=7,
        stamp_ns=1_500_000_123,
        frame_id="base",
        policy_version=3,
        vla_ns=1_520_000_000,
        sent_ns=1_530_000_456,
    )


def transition():
    return Transition(
        rl_token=RNG.normal(size=16),
        proprio=RNG.normal(size=12),
        action=RNG.normal(size=(10, 4)),
        reference=RNG.normal(size=(10, 4)),
        rewards=np.r_[np.zeros(9), 1.0],
        done=True,
        intervened=True,
        next_rl_token=RNG.normal(size=16),
        next_proprio=RNG.normal(size=12),
        next_reference=RNG.normal(size=(10, 4)),
        episode_id=3,
        step=42,
        stamp_ns=99,
    )


def assert_same(a, b):
    for field in a.__dataclass_fields__:
        x, y = getattr(a, field), getattr(b, field)
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=field)
        elif isinstance(x, ActionChunk | ChunkRequest):
            assert_same(x, y)
        elif isinstance(x, dict):
            assert x.keys() == y.keys()
            for k in x:
                np.testing.assert_array_equal(x[k], y[k], err_msg=k)
        else:
            assert x == y, field


def test_action_chunk_round_trip():
    c = chunk()
    assert_same(c, convert.chunk_from_msg(wire(convert.chunk_to_msg(c))))


def request():
    return ChunkRequest(
        episode_id=2,
        step=30,
        axis_names=AXES,
        phase=Phase.CRITICAL,
        need_chunk=False,
        terminal=Terminal.SUCCESS,
        executed=RNG.normal(size=(2, 4)),
        sources=(Source.ACTOR, Source.HUMAN),
        rewards=[0.0, 1.0],
        stamp_ns=123,
    )


def test_request_round_trip():
    r = request()
    assert_same(r, convert.request_from_msg(wire(convert.request_to_msg(r))))
    empty = ChunkRequest(episode_id=0, step=0, axis_names=AXES)
    assert_same(empty, convert.request_from_msg(wire(convert.request_to_msg(empty))))


def test_vla_output_round_trip():
    out = VlaOutput(
        request=request(),
        reference=chunk(50, Source.VLA),
        rl_token=RNG.normal(size=64),
        proprio=RNG.normal(size=12),
        model_id="vla-abc",
        stamp_ns=5,
    )
    assert_same(out, convert.vla_output_from_msg(wire(convert.vla_output_to_msg(out))))


def test_sim_state_round_trip():
    state = SimState(
        episode_id=1,
        step=3,
        qpos=RNG.normal(size=6),
        mocap=RNG.normal(size=7),
        params=[1e-3, 0, 0.1],
        stamp_ns=50_000_000,
    )
    assert_same(state, convert.sim_state_from_msg(wire(convert.sim_state_to_msg(state))))


def test_bad_request_names_field():
    msg = convert.request_to_msg(request())
    msg.rewards = msg.rewards[:1]
    with pytest.raises(ValueError, match=r"ChunkRequest\.rewards"):
        convert.request_from_msg(msg)
    msg = convert.request_to_msg(request())
    msg.terminal = 17
    with pytest.raises(ValueError, match=r"ChunkRequest\."):
        convert.request_from_msg(msg)


def test_transition_round_trip():
    t = transition()
    assert_same(t, convert.transition_from_msg(wire(convert.transition_to_msg(t))))


def test_weights_round_trip():
    w = PolicyWeights(
        version=4,
        learner_step=800,
        architecture='{"hidden": [8]}',
        tensors={"net.0.weight": RNG.normal(size=(8, 3)), "net.0.bias": RNG.normal(size=8)},
    )
    assert_same(w, convert.weights_from_msg(wire(convert.weights_to_msg(w))))


def test_event_round_trip():
    e = EpisodeEvent(Event.SUCCESS, episode_id=9, step=33, detail="inserted", stamp_ns=10**10)
    assert_same(e, convert.event_from_msg(wire(convert.event_to_msg(e))))


@pytest.mark.parametrize(
    "encoding,shape,dtype",
    [("rgb8", (6, 5, 3), np.uint8), ("mono8", (4, 3, 1), np.uint8), ("32FC1", (3, 2, 1), np.float32)],
)
def test_image_round_trip(encoding, shape, dtype):
    img = (RNG.uniform(0, 200, size=shape)).astype(dtype)
    msg = wire(convert.image_to_msg(img, encoding, stamp_ns=77, frame_id="cam"))
    assert (msg.height, msg.width, msg.encoding) == (shape[0], shape[1], encoding)
    np.testing.assert_array_equal(convert.image_from_msg(msg, encoding), img)
    assert convert.stamp_to_ns(msg.header.stamp) == 77


def test_image_with_padded_rows():
    img = RNG.integers(0, 255, size=(3, 2, 3), dtype=np.uint8)
    padded = np.zeros((3, 8), np.uint8)
    padded[:, :6] = img.reshape(3, 6)
    msg = Image(height=3, width=2, encoding="rgb8", step=8, data=padded.tobytes())
    np.testing.assert_array_equal(convert.image_from_msg(msg), img)


def test_joint_state_round_trip_and_reorder():
    names = ("x", "y", "z")
    msg = wire(convert.joint_state_to_msg(names, np.array([1, 2, 3]), np.array([4, 5, 6]), stamp_ns=3))
    pos, vel = convert.joint_state_from_msg(msg, ("z", "x"))
    np.testing.assert_array_equal(pos, [3, 1])
    np.testing.assert_array_equal(vel, [6, 4])


@pytest.mark.parametrize(
    "mutate,field",
    [
        (lambda m: setattr(m, "chunk_len", 11), "ActionChunk.data"),
        (lambda m: setattr(m, "axis_names", []), "ActionChunk.axis_names"),
        (lambda m: m.data.__setitem__(3, float("nan")), "ActionChunk.data"),
    ],
)
def test_bad_chunk_names_field(mutate, field):
    msg = convert.chunk_to_msg(chunk())
    mutate(msg)
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        convert.chunk_from_msg(msg)


def test_bad_transition_names_field():
    msg = convert.transition_to_msg(transition())
    msg.rewards = msg.rewards[:5]
    with pytest.raises(ValueError, match=r"Transition\.rewards"):
        convert.transition_from_msg(msg)
    msg = convert.transition_to_msg(transition())
    msg.next_proprio[0] = float("inf")
    with pytest.raises(ValueError, match=r"Transition\.next_proprio"):
        convert.transition_from_msg(msg)


def test_bad_images_name_field():
    with pytest.raises(ValueError, match=r"Image\.data"):
        convert.image_to_msg(np.zeros((4, 4, 4), np.uint8), "rgb8")
    with pytest.raises(ValueError, match=r"Image\.encoding"):
        convert.image_from_msg(convert.image_to_msg(np.zeros((2, 2, 3), np.uint8)), expect_encoding="mono8")
    msg = convert.image_to_msg(np.zeros((2, 2, 3), np.uint8))
    msg.height = 3
    with pytest.raises(ValueError, match=r"Image\.data"):
        convert.image_from_msg(msg)


def test_bad_joint_state_and_event():
    with pytest.raises(ValueError, match=r"JointState\.name"):
        convert.joint_state_from_msg(JointState(name=["a"], position=[1.0]), ("b",))
    msg = convert.event_to_msg(EpisodeEvent(Event.START))
    msg.event = 200
    with pytest.raises(ValueError, match=r"EpisodeEvent\.event"):
        convert.event_from_msg(msg)


def test_message_types_are_the_generated_ones():
    assert isinstance(convert.chunk_to_msg(chunk()), ActionChunkMsg)
    assert isinstance(convert.transition_to_msg(transition()), TransitionMsg)


def test_camera_info_round_trip():
    from rlt.robot.imaging import Intrinsics

    intr = Intrinsics(640, 480, 610.5, 611.0, 320.2, 238.9, "plumb_bob", (0.1, -0.2, 0.0, 0.001, 0.0))
    msg = wire(convert.camera_info_to_msg(intr, 42, "front_color_optical_frame"))
    assert convert.camera_info_from_msg(msg) == intr and msg.header.frame_id == "front_color_optical_frame"
    assert list(msg.p) == [610.5, 0.0, 320.2, 0.0, 0.0, 611.0, 238.9, 0.0, 0.0, 0.0, 1.0, 0.0]


def test_joint_trajectory_round_trip_and_bad_commands():
    from rlt.robot.executor import Command

    names = ("j1", "j2")
    command = Command(np.array([[0.1, 0.2], [0.3, 0.4]]), np.array([[1.0, 2.0], [0.0, 0.0]]), np.array([0.05, 0.1]))
    msg = wire(convert.joint_trajectory_to_msg(names, command))
    got_names, got = convert.joint_trajectory_from_msg(msg)
    assert got_names == names and msg.points[1].time_from_start.nanosec == 100_000_000
    np.testing.assert_array_equal(got.positions, command.positions)
    np.testing.assert_array_equal(got.velocities, command.velocities)
    np.testing.assert_allclose(got.times_s, command.times_s)
    with pytest.raises(ValueError, match=r"JointTrajectory.points: non-finite"):
        convert.joint_trajectory_to_msg(names, Command(np.full((1, 2), np.nan), np.zeros((1, 2)), np.ones(1)))
    with pytest.raises(ValueError, match=r"JointTrajectory.points: positions \(1, 3\)"):
        convert.joint_trajectory_to_msg(names, Command(np.zeros((1, 3)), np.zeros((1, 3)), np.ones(1)))
