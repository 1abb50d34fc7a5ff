"""vla: the frozen VLA + RL-token encoder behind ONNX Runtime; one forward pass per `chunk_request`.

Subscribes to `camera/<name>/image_raw`, `joint_states` and `chunk_request`; publishes `vla/output`. Images and
proprio are paired with the request by stamp (rlt.sync): exactly in the sim, nearest within `sync_tolerance_s` on a
robot. Proprio is the positions then velocities of `joint_names` (the sim's joints by default). A missing or
mismatched model fails at startup.
"""

from __future__ import annotations

import collections
import dataclasses
import time

from rclpy.node import Node
from rlt_msgs.msg import ChunkRequest, VlaOutput
from sensor_msgs.msg import Image, JointState

from rlt.config import Config
from rlt.diagnostics import Health
from rlt.serving import VlaServer, VlaServerConfig
from rlt.sim.scene import JOINT_NAMES
from rlt.sync import ObservationSync
from rlt_nodes import convert, qos
from rlt_nodes.boundary import subscribe
from rlt_nodes.diagnostics import publish_diagnostics
from rlt_nodes.params import declare_config
from rlt_nodes.runner import run_node


@dataclasses.dataclass(frozen=True)
class VlaNodeConfig(Config):
    """The vla node's own parameters (unprefixed, beside VlaServerConfig's): how it subscribes and pairs."""

    lockstep: bool = True  # reliable lockstep QoS for images and joint states (sim); false on a robot (sensor QoS)
    joint_names: tuple[str, ...] = JOINT_NAMES  # proprio joints (positions then velocities), as in the training data
    sync_tolerance_s: float = 0.0  # s: pair the image / joint state nearest each request within this; 0 = exact (sim)

    def validate(self) -> None:
        if not self.joint_names:
            self.fail("joint_names", "needs at least one joint (the model's proprio)")
        if self.sync_tolerance_s < 0:
            self.fail("sync_tolerance_s", "must be >= 0 (0 = exact stamps)")


class VlaNode(Node):
    """Thin wrapper: sync -> VlaServer.answer -> publish."""

    def __init__(self) -> None:
        super().__init__("vla")
        cfg = declare_config(self, VlaServerConfig)
        self.server = VlaServer(cfg)
        node_cfg = declare_config(self, VlaNodeConfig)
        lockstep, self.joint_names, tolerance_s = node_cfg.lockstep, node_cfg.joint_names, node_cfg.sync_tolerance_s
        if self.server.model.proprio_dim != 2 * len(self.joint_names):
            raise ValueError(f"{cfg.model_path} takes proprio of {self.server.model.proprio_dim} values, but "
                             f"joint_names has {len(self.joint_names)} joints (positions then velocities: 2 x joints)")
        self.sync = ObservationSync(cfg.cameras, tolerance_ns=int(tolerance_s * 1e9))
        self.pub = self.create_publisher(VlaOutput, "vla/output", qos.VLA_OUTPUT)
        self.answered: collections.OrderedDict[int, VlaOutput] = collections.OrderedDict()  # stamp -> last outputs
        for camera in cfg.cameras:
            subscribe(
                self,
                Image,
                f"camera/{camera}/image_raw",
                lambda m, c=camera: self.on_image(c, m),
                qos.LOCKSTEP if lockstep else qos.SENSOR,
            )
        subscribe(self, JointState, "joint_states", self.on_joints, qos.LOCKSTEP if lockstep else qos.STATE)
        subscribe(self, ChunkRequest, "chunk_request", self.on_request, qos.CONTROL)
        self.expected = (cfg.image_size, cfg.image_size, 3)
        self.health = Health()  # observation (request stamp) -> VLA output published; the forward pass alone
        publish_diagnostics(self, self.health)
        self.get_logger().info(f"serving {self.server.model.model_id} on {self.server.provider}")

    def on_image(self, camera: str, msg: Image) -> None:
        image = convert.image_from_msg(msg, expect_encoding="rgb8")
        if image.shape != self.expected:
            raise ValueError(f"camera {camera}: image {image.shape}, expected {self.expected} (vla.image_size)")
        self.sync.add_image(camera, convert.stamp_to_ns(msg.header.stamp), image)
        self.serve()

    def on_joints(self, msg: JointState) -> None:
        try:
            proprio = convert.proprio_from_joint_state(msg, self.joint_names)
        except ValueError as exc:  # e.g. a second joint_states publisher (a gripper) without our joints
            self.get_logger().warning(f"joint_states ignored: {exc}", throttle_duration_sec=5.0)
            return
        self.sync.add_proprio(convert.stamp_to_ns(msg.header.stamp), proprio)
        self.serve()

    def on_request(self, msg: ChunkRequest) -> None:
        request = convert.request_from_msg(msg)
        if request.stamp_ns in self.answered:  # the driver re-sent it: the answer was lost downstream
            self.pub.publish(self.answered[request.stamp_ns])
            return
        self.sync.add_request(request)
        self.serve()

    def serve(self) -> None:
        for obs in self.sync.pop_ready():
            began = time.perf_counter()
            answer = self.server.answer(obs)
            now = self.get_clock().now().nanoseconds
            answer.reference.vla_ns = now  # the chunk carries its stage times to the executor
            out = convert.vla_output_to_msg(answer)
            self.pub.publish(out)
            self.health.latency("forward", time.perf_counter() - began)
            self.health.latency("obs_to_vla_output", (now - obs.request.stamp_ns) * 1e-9)
            self.answered[obs.request.stamp_ns] = out
            while len(self.answered) > 20:
                self.answered.popitem(last=False)


def main(argv: list[str] | None = None) -> int:
    return run_node(VlaNode, argv)
