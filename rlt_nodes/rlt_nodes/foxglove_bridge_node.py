"""foxglove_bridge: an optional live view of any session in Foxglove, through the foxglove-sdk WebSocket server.

This module owns what a Foxglove client sees of a session. Each Foxglove channel has the name of the ROS topic it
comes from (resolved in the node's namespace):

- `camera/<name>/image_raw` for each of `cameras` -> `foxglove.RawImage` (the SDK's typed image channel);
- `vla/output` -> `vla/output/reference` and `action_chunk` -> `action_chunk`: the VLA's reference chunk and the
  chunk sent to the executor, as JSON (`chunk_json`): plot `columns.dx[:]` of both against the index to compare them;
- `/diagnostics` -> `/diagnostics` (JSON, `diagnostics_json`), and each status that carries the learner's critic
  gauge `critic_q_mean` also -> `rl/critic` (JSON, `critic_json`);
- `episode/events` -> `episode/events` (JSON, `event_json`).

Subscriptions use the QoS of the topic's publishers (`rlt_nodes.qos`); a message is converted only while a client
subscribes to its channel. The node reports on `/diagnostics` too (messages forwarded per kind), is never required by
a session (`rlt launch <session> --foxglove`, or the `foxglove:=true` argument of the launch files) and stops its
server when it shuts down.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import foxglove
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from foxglove.channels import RawImageChannel
from foxglove.messages import RawImage, Timestamp
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rlt_msgs.msg import ActionChunk, EpisodeEvent, VlaOutput
from sensor_msgs.msg import Image

from rlt.config import Config
from rlt.diagnostics import Health, parse_snapshot
from rlt.types import ActionChunk as Chunk
from rlt.types import EpisodeEvent as Event
from rlt_nodes import convert, qos
from rlt_nodes.boundary import subscribe
from rlt_nodes.diagnostics import TOPIC as DIAGNOSTICS
from rlt_nodes.diagnostics import level_of, publish_diagnostics
from rlt_nodes.params import declare_config
from rlt_nodes.runner import run_node

CRITIC_GAUGE = "critic_q_mean"  # the learner's /diagnostics gauge of its critic (learner_node.LearnerNode.gauges)
CRITIC_TOPIC = "rl/critic"


@dataclasses.dataclass(frozen=True)
class FoxgloveBridgeConfig(Config):
    """The bridge node's parameters (unprefixed): where its WebSocket server listens and which cameras it shows."""

    # interface the server listens on: this machine only; 0.0.0.0 lets other machines watch (no authentication)
    host: str = "127.0.0.1"
    port: int = 8765  # TCP port, Foxglove's default for a WebSocket connection; 0 = any free port (logged)
    cameras: tuple[str, ...] = ("front", "wrist")  # names of the camera/<name>/image_raw topics shown

    def validate(self) -> None:
        if not self.host:
            self.fail("host", "needs an address to listen on, e.g. 127.0.0.1")
        self.require_range("port", 0, 65535)
        if any(not name or "/" in name for name in self.cameras):
            self.fail("cameras", "needs camera names, each one topic segment (camera/<name>/image_raw)")


def seconds(stamp_ns: int) -> float:
    """A stamp in ns as s (float): what the JSON channels carry."""
    return stamp_ns * 1e-9


def chunk_json(chunk: Chunk) -> dict[str, Any]:
    """An action chunk as JSON: rows float[C][D] as sent, and the same values by axis, `columns[axis]` float[C]."""
    rows = chunk.data.astype(np.float64).tolist()
    return {
        "stamp": seconds(chunk.stamp_ns),
        "chunk_id": chunk.chunk_id,
        "source": chunk.source.name,
        "policy_version": chunk.policy_version,
        "axis_names": list(chunk.axis_names),
        "rows": rows,
        "columns": {axis: [row[j] for row in rows] for j, axis in enumerate(chunk.axis_names)},
    }


def event_json(event: Event) -> dict[str, Any]:
    return {"stamp": seconds(event.stamp_ns), "episode_id": event.episode_id, "event": event.event.name,
            "step": event.step, "detail": event.detail}


def diagnostics_json(msg: DiagnosticArray) -> dict[str, Any]:
    """Every status with its values as a dict (text, as published)."""
    return {
        "stamp": seconds(convert.stamp_to_ns(msg.header.stamp)),
        "status": [{"name": s.name, "level": level_of(s), "message": s.message, "hardware_id": s.hardware_id,
                    "values": {kv.key: kv.value for kv in s.values}} for s in msg.status],
    }


def critic_json(stamp_ns: int, status: DiagnosticStatus) -> dict[str, Any] | None:
    """The critic gauge of a learner's status and the learner's other numbers; None when it has no critic gauge."""
    values = parse_snapshot({kv.key: kv.value for kv in status.values})
    if CRITIC_GAUGE not in values:
        return None
    return {"stamp": seconds(stamp_ns), "node": status.name, "q_mean": values.pop(CRITIC_GAUGE), **values}


def raw_image(msg: Image) -> RawImage:
    """sensor_msgs/Image (any encoding of `convert.IMAGE_ENCODINGS`) -> foxglove.RawImage, rows packed, little
    endian."""
    pixels = convert.image_from_msg(msg)  # validated array[H, W, C]
    data = np.ascontiguousarray(pixels, pixels.dtype.newbyteorder("<"))
    stamp = msg.header.stamp
    return RawImage(timestamp=Timestamp(int(stamp.sec), int(stamp.nanosec)), frame_id=msg.header.frame_id,
                    width=int(msg.width), height=int(msg.height), encoding=msg.encoding,
                    step=int(data.strides[0]), data=data.tobytes())


class FoxgloveBridgeNode(Node):
    """Thin wrapper: topics in -> JSON / RawImage on the SDK's channels -> the WebSocket server."""

    def __init__(self) -> None:
        super().__init__("foxglove_bridge")
        cfg = declare_config(self, FoxgloveBridgeConfig)
        self.fg_context = foxglove.Context()  # this node's channels and server only, not the SDK's global ones
        self.server = foxglove.start_server(name=self.get_fully_qualified_name(), host=cfg.host, port=cfg.port,
                                            context=self.fg_context)
        self.health = Health()  # messages forwarded per kind (counters `sent_<kind>`), the server's port
        self.health.set("port", self.server.port)
        for camera in cfg.cameras:
            topic = f"camera/{camera}/image_raw"
            channel = RawImageChannel(self.resolve_topic_name(topic), context=self.fg_context)
            subscribe(self, Image, topic, functools.partial(self.on_image, channel), qos.SENSOR)
        self.reference = self._json("vla/output/reference")
        self.chunk = self._json("action_chunk")
        self.critic = self._json(CRITIC_TOPIC)
        self.events = self._json("episode/events")
        self.diagnostics = self._json(DIAGNOSTICS)
        subscribe(self, VlaOutput, "vla/output", self.on_vla_output, qos.VLA_OUTPUT)
        subscribe(self, ActionChunk, "action_chunk", self.on_chunk, qos.CONTROL)
        subscribe(self, EpisodeEvent, "episode/events", self.on_event, qos.EVENTS)
        subscribe(self, DiagnosticArray, DIAGNOSTICS, self.on_diagnostics, QoSProfile(depth=10))
        # its 1 s timer also wakes the executor when no message comes: rclpy may see a Ctrl-C's shutdown only then
        publish_diagnostics(self, self.health)
        self.get_logger().info(
            f"Foxglove WebSocket server on ws://{cfg.host}:{self.server.port}: cameras {', '.join(cfg.cameras)}, "
            f"chunks, critic, episode events, diagnostics"
        )

    def _json(self, topic: str) -> foxglove.Channel:
        return foxglove.Channel(self.resolve_topic_name(topic), message_encoding="json", context=self.fg_context)

    def on_image(self, channel: RawImageChannel, msg: Image) -> None:
        if channel.has_sinks():
            channel.log(raw_image(msg))
            self.health.count("sent_images")

    def on_vla_output(self, msg: VlaOutput) -> None:
        if self.reference.has_sinks():
            self.reference.log(chunk_json(convert.chunk_from_msg(msg.reference)))
            self.health.count("sent_references")

    def on_chunk(self, msg: ActionChunk) -> None:
        if self.chunk.has_sinks():
            self.chunk.log(chunk_json(convert.chunk_from_msg(msg)))
            self.health.count("sent_chunks")

    def on_event(self, msg: EpisodeEvent) -> None:
        if self.events.has_sinks():
            self.events.log(event_json(convert.event_from_msg(msg)))
            self.health.count("sent_events")

    def on_diagnostics(self, msg: DiagnosticArray) -> None:
        if self.diagnostics.has_sinks():
            self.diagnostics.log(diagnostics_json(msg))
            self.health.count("sent_diagnostics")
        if self.critic.has_sinks():
            stamp_ns = convert.stamp_to_ns(msg.header.stamp)
            for status in msg.status:
                critic = critic_json(stamp_ns, status)
                if critic is not None:
                    self.critic.log(critic)
                    self.health.count("sent_critic")

    def destroy_node(self) -> None:
        if hasattr(self, "server"):  # else the constructor failed before the server started
            self.server.stop()
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    return run_node(FoxgloveBridgeNode, argv)
