"""The realsense node on librealsense's software device: synthetic frames come out as correct Image messages."""

import time

import numpy as np
import pytest
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image

from rlt.robot.imaging import square_resize
from rlt.robot.realsense import import_pyrealsense2
from rlt_nodes import convert, qos

pytestmark = pytest.mark.ros
try:
    import_pyrealsense2()
except ImportError as exc:
    pytest.skip(f"pyrealsense2 unavailable: {exc}", allow_module_level=True)

from rlt.robot.realsense import SoftwareCamera  # noqa: E402
from rlt_nodes.realsense_node import RealSenseNode  # noqa: E402

TOPICS = ("image_raw", "camera_info", "color/image_raw", "color/camera_info", "depth/image_raw", "depth/camera_info")


def test_software_device_frames_come_out_as_images(ros):
    cam = SoftwareCamera(serial="555", size=(640, 480), fps=30)
    params = [Parameter("camera.name", value="wrist"), Parameter("camera.streams", value=["color", "depth"])]
    node = RealSenseNode(device=cam.device, context=ros.context, parameter_overrides=params)
    ros.executor.add_node(node)
    ros.nodes.append(node)
    listener = ros.node("listener")
    got: dict[str, list] = {t: [] for t in TOPICS}
    for topic in TOPICS:
        kind = CameraInfo if topic.endswith("camera_info") else Image
        listener.create_subscription(kind, f"camera/wrist/{topic}", lambda m, t=topic: got[t].append(m), qos.SENSOR)
    ros.spin_until(lambda: all(node.count_subscribers(f"camera/wrist/{t}") for t in TOPICS), 20, "discovery")
    frames = [np.random.default_rng(k).integers(0, 256, (480, 640, 3), dtype=np.uint8) for k in range(3)]
    depth = np.arange(480 * 640, dtype=np.uint32).reshape(480, 640).astype(np.uint16)
    now_ms = time.time() * 1000.0
    for k, frame in enumerate(frames):  # global time: the device clock already mapped to host time by librealsense
        cam.push("color", frame, now_ms + 33.3 * k, k, "global_time")
        cam.push("depth", depth, now_ms + 33.3 * k, k, "global_time")
        ros.spin_until(lambda k=k: all(len(got[t]) > k for t in TOPICS), 10, f"frame {k} on every topic")
    for k, frame in enumerate(frames):
        stamp = round((now_ms + 33.3 * k) * 1e6)
        full, small = got["color/image_raw"][k], got["image_raw"][k]
        assert full.encoding == "rgb8" and (full.width, full.height, full.step) == (640, 480, 1920)
        assert np.array_equal(convert.image_from_msg(full), frame)
        assert np.array_equal(convert.image_from_msg(small, "rgb8"), square_resize(frame, 96))
        assert convert.stamp_to_ns(full.header.stamp) == convert.stamp_to_ns(small.header.stamp) == stamp
        assert full.header.frame_id == "wrist_color_optical_frame"
    dep = got["depth/image_raw"][0]
    assert dep.encoding == "16UC1" and dep.header.frame_id == "wrist_depth_optical_frame"
    assert np.array_equal(convert.image_from_msg(dep)[..., 0], depth)
    info = convert.camera_info_from_msg(got["camera_info"][0])
    assert (info.width, info.height) == (96, 96) and info.fx == pytest.approx(120.0)
    assert got["color/camera_info"][0].k[0] == 600.0 and got["color/camera_info"][0].distortion_model == "plumb_bob"
