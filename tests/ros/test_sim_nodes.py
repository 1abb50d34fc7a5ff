"""sim_driver and sim_camera as separate processes: a published chunk is executed, images arrive per request."""

import numpy as np
import pytest
from rlt_msgs.msg import ActionChunk, ChunkRequest, EpisodeEvent
from sensor_msgs.msg import Image, JointState

from rlt.sim.scene import JOINT_NAMES
from rlt.types import ActionChunk as Chunk
from rlt.types import Event, Source
from rlt_nodes import convert, qos

pytestmark = [pytest.mark.ros, pytest.mark.sim]
AXES = ("dx", "dy", "dz", "dyaw")


def test_driver_executes_chunks_and_camera_renders(ros, spawn):
    node = ros.node("fake_policy")
    requests, images, joints, events = [], {"front": {}, "wrist": {}}, {}, []
    node.create_subscription(
        ChunkRequest, "chunk_request", lambda m: requests.append(convert.request_from_msg(m)), qos.CONTROL
    )
    image_subs = []
    for cam in images:
        sub = node.create_subscription(
            Image,
            f"camera/{cam}/image_raw",
            lambda m, c=cam: images[c].__setitem__(convert.stamp_to_ns(m.header.stamp), m),
            qos.LOCKSTEP,
        )
        image_subs.append(sub)
    node.create_subscription(
        JointState,
        "joint_states",
        lambda m: joints.__setitem__(
            convert.stamp_to_ns(m.header.stamp), convert.proprio_from_joint_state(m, JOINT_NAMES)
        ),
        qos.LOCKSTEP,
    )
    node.create_subscription(
        EpisodeEvent, "episode/events", lambda m: events.append(convert.event_from_msg(m)), qos.EVENTS
    )
    pub = node.create_publisher(ActionChunk, "action_chunk", qos.CONTROL)
    camera = spawn("sim_camera", {"sim.image_size": 64})
    # match the image streams before the episode starts, so no frame depends on late-joiner delivery
    ros.spin_until(lambda: all(sub.get_publisher_count() > 0 for sub in image_subs), 30, "the camera's image topics")
    driver_params = {"sim.image_size": 64, "driver.episodes": 1, "driver.mode": "full", "driver.handoff": "never"}
    driver = spawn("sim_driver", {**driver_params, "sim.episode_seconds": 1.5})
    dz = -0.002  # m per step: 10 steps lower the hand by 2 cm
    answered = 0
    while not (requests and requests[-1].terminal):
        ros.spin_until(lambda n=answered: len(requests) > n, 30, f"chunk request {answered}")
        req = requests[answered]
        answered += 1
        if req.need_chunk:
            data = np.tile([0.0, 0.0, dz, 0.0], (10, 1))
            pub.publish(convert.chunk_to_msg(Chunk(data, AXES, Source.ACTOR, answered, req.stamp_ns)))
    # 1.5 s at 20 Hz: 30 steps, chunk boundaries at 0, 10, 20, then the timeout report at 30
    assert [(r.step, r.need_chunk, int(r.terminal)) for r in requests] == [
        (0, True, 0),
        (10, True, 0),
        (20, True, 0),
        (30, False, 3),
    ]
    np.testing.assert_allclose(requests[1].executed, np.tile([0, 0, dz, 0], (10, 1)), atol=1e-7)
    ros.spin_until(lambda: len(events) >= 2, 10, "the episode's events")
    assert [e.event for e in events] == [Event.START, Event.TIMEOUT]
    ros.spin_until(lambda: all(r.stamp_ns in joints for r in requests), 10, "joint states of every request")
    z0, z1 = joints[requests[0].stamp_ns][2], joints[requests[1].stamp_ns][2]
    assert z1 - z0 == pytest.approx(10 * dz, abs=2e-3)  # the servos track the commanded descent

    def missing():
        return [(c, r.step) for r in requests for c in images if r.stamp_ns not in images[c]]

    try:
        ros.spin_until(lambda: not missing(), 30, "images per request")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}: missing {missing()}\n{camera.stacks()}\n{driver.output()}") from exc
    for cam in images:
        msg = images[cam][requests[1].stamp_ns]
        assert (msg.height, msg.width, msg.encoding) == (64, 64, "rgb8")
        image = convert.image_from_msg(msg)
        assert image.shape == (64, 64, 3) and image.std() > 5  # a real rendering, not a blank frame
