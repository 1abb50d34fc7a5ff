"""sim_camera: renders every camera of the sim scene from `sim/state` and publishes `camera/<name>/image_raw`.

The images carry the state's stamp (sim time), so the VLA pairs them exactly with the driver's requests. In the
lockstep sim they go out reliable + transient local (no frame may be lost); `lockstep:=false` gives sensor-data QoS.
"""

from __future__ import annotations

import dataclasses

from rclpy.node import Node
from rlt_msgs.msg import SimState
from sensor_msgs.msg import Image

from rlt.config import Config
from rlt.sim.config import SimConfig
from rlt.sim.render import StateRenderer
from rlt_nodes import convert, qos
from rlt_nodes.boundary import subscribe
from rlt_nodes.params import declare_config
from rlt_nodes.runner import run_node


@dataclasses.dataclass(frozen=True)
class SimCameraNodeConfig(Config):
    """The sim camera node's own parameters (unprefixed); the scene is `sim.*` (SimConfig)."""

    lockstep: bool = True  # images reliable + transient local (no frame lost in the lockstep sim); false: sensor QoS


class SimCameraNode(Node):
    """Thin wrapper: `sim/state` -> `StateRenderer` -> one Image per camera."""

    def __init__(self) -> None:
        super().__init__("sim_camera")
        cfg = declare_config(self, SimConfig, "sim")
        image_qos = qos.LOCKSTEP if declare_config(self, SimCameraNodeConfig).lockstep else qos.SENSOR
        self.renderer = StateRenderer(cfg)
        self.pubs = {c: self.create_publisher(Image, f"camera/{c}/image_raw", image_qos) for c in cfg.cameras}
        subscribe(self, SimState, "sim/state", self.on_state, qos.LOCKSTEP)
        self.get_logger().info(f"rendering {', '.join(cfg.cameras)} at {cfg.image_size} px")

    def on_state(self, msg: SimState) -> None:
        state = convert.sim_state_from_msg(msg)
        images = self.renderer.render(state.qpos, state.mocap, state.params)
        for camera, image in images.items():
            self.pubs[camera].publish(convert.image_to_msg(image, "rgb8", state.stamp_ns, frame_id=camera))

    def destroy_node(self) -> None:
        self.renderer.close()
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    return run_node(SimCameraNode, argv)
