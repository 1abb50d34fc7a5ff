"""realsense: one Intel RealSense camera (by serial number) -> `camera/<name>/...` Image + CameraInfo topics.

Publishes, stamped with the frame's device timestamp mapped to ROS time (rlt.robot.imaging.DeviceClock):
- `camera/<name>/image_raw` + `camera_info`: the square `vla_size` rgb8 copy the VLA subscribes to;
- `camera/<name>/color/image_raw` + `color/camera_info` and `depth/image_raw` + `depth/camera_info` (16UC1, device
  depth units) at full resolution, unless `camera.full_resolution` is false.
All with sensor-data QoS. Run one node per camera (`camera.name`, `camera.serial`). Frames are read in a thread
(`rlt.robot.realsense.RealSenseCamera`); a camera that stops delivering ends the node with an error.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from rlt.config import Config
from rlt.robot.realsense import RealSenseCamera, RealSenseConfig, find_device
from rlt_nodes import convert, qos
from rlt_nodes.params import declare_config
from rlt_nodes.runner import finish, run_node


@dataclasses.dataclass(frozen=True)
class RealSenseNodeConfig(Config):
    """The camera node's own parameters (unprefixed); the camera is `camera.*` (RealSenseConfig)."""

    frame_prefix: str = ""  # TF frames <prefix>_<stream>_optical_frame, to match the URDF; "" = camera.name


class RealSenseNode(Node):
    """Thin wrapper: RealSenseCamera.read() in a thread -> Image + CameraInfo messages."""

    def __init__(self, device: Any = None, **node_kwargs: Any) -> None:
        """`device`: an rs.device to stream instead of the one `camera.serial` names (tests: a software device)."""
        super().__init__("realsense", **node_kwargs)
        self.cfg = declare_config(self, RealSenseConfig, "camera")
        frame = declare_config(self, RealSenseNodeConfig).frame_prefix or self.cfg.name  # "": derived
        self.frame_ids = {s: f"{frame}_{s}_optical_frame" for s in ("color", "depth")}
        try:
            self.camera = RealSenseCamera(device if device is not None else find_device(self.cfg.serial), self.cfg)
        except ImportError as exc:
            raise RuntimeError(str(exc)) from exc
        prefix = f"camera/{self.cfg.name}"
        topics = [("image_raw", "camera_info")] if self.cfg.vla_size else []
        if self.cfg.full_resolution:
            topics += [(f"{s}/image_raw", f"{s}/camera_info") for s in self.cfg.streams]
        self.pubs = {
            image: (
                self.create_publisher(Image, f"{prefix}/{image}", qos.SENSOR),
                self.create_publisher(CameraInfo, f"{prefix}/{info}", qos.SENSOR),
            )
            for image, info in topics
        }
        self.sim_time = bool(self.get_parameter("use_sim_time").value)
        self.published = 0
        self.exit_code = 0
        self.running = True
        self.thread = threading.Thread(target=self.read_loop, name=f"realsense_{self.cfg.name}", daemon=True)
        self.thread.start()
        self.get_logger().info(
            f"RealSense {self.camera.serial} as '{self.cfg.name}': {', '.join(self.cfg.streams)} "
            f"{self.cfg.width}x{self.cfg.height}@{self.cfg.fps}, VLA copy {self.cfg.vla_size} px"
        )

    def read_loop(self) -> None:
        while self.running:
            try:
                host_ns = time.time_ns()  # ROS time is this realtime clock, unless the node runs on sim time
                offset = self.get_clock().now().nanoseconds - host_ns if self.sim_time else 0
                images = self.camera.read(0.1, host_ns, offset)
            except RuntimeError as exc:
                self.get_logger().error(str(exc))
                finish(self, 1)
                return
            for image in images:
                image_pub, info_pub = self.pubs[image.topic]
                frame_id = self.frame_ids["depth" if image.topic.startswith("depth") else "color"]
                image_pub.publish(convert.image_to_msg(image.image, image.encoding, image.stamp_ns, frame_id))
                info_pub.publish(convert.camera_info_to_msg(image.intrinsics, image.stamp_ns, frame_id))
                self.published += 1

    def destroy_node(self) -> None:
        self.running = False
        if hasattr(self, "thread"):  # (not when the constructor failed)
            self.thread.join(timeout=2.0)
            self.camera.close()
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    return run_node(RealSenseNode, argv)
