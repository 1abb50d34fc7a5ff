"""The foxglove_bridge process seen by a Foxglove client: a WebSocket client (the `websockets` package) subscribes to
every advertised channel and decodes what arrives from each topic of a session, the learner's own critic value
included; the server stops with the node."""

import base64
import json
import socket
import struct

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from rclpy.qos import QoSProfile
from rlt_msgs.msg import ActionChunk, EpisodeEvent, Transition, VlaOutput
from sensor_msgs.msg import Image
from websockets.sync.client import ClientConnection, connect

from rlt.types import ActionChunk as Chunk
from rlt.types import EpisodeEvent as Event
from rlt.types import Event as EventKind
from rlt.types import Source
from rlt.types import Transition as Sample
from rlt_nodes import convert, qos

pytestmark = pytest.mark.ros
# the foxglove-sdk server's protocol (the older foxglove.websocket.v1 is refused with HTTP 400 by 0.30.3)
SUBPROTOCOL = "foxglove.sdk.v1"
MESSAGE_DATA = 1  # opcode of a binary frame: u8 opcode, u32 subscription id, u64 log time (ns), payload (LE)
CAMERAS = ("front", "side")
AXES = ("dx", "dy", "dz", "dyaw")
TOPICS = (*(f"/camera/{c}/image_raw" for c in CAMERAS), "/vla/output/reference", "/action_chunk", "/rl/critic",
          "/episode/events", "/diagnostics")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Viewer:
    """A Foxglove client: subscribes to each channel as it is advertised and keeps every payload per topic."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.channels: dict[int, dict] = {}  # subscription id -> advertised channel
        self.received: dict[str, list[bytes]] = {}

    def poll(self) -> None:
        """Handle every frame that has arrived, without waiting."""
        while True:
            try:
                frame = self.ws.recv(timeout=0)
            except TimeoutError:
                return
            if isinstance(frame, str):
                op = json.loads(frame)
                if op["op"] == "advertise":
                    subscriptions = []
                    for channel in op["channels"]:
                        self.channels[len(self.channels)] = channel
                        subscriptions.append({"id": len(self.channels) - 1, "channelId": channel["id"]})
                    self.ws.send(json.dumps({"op": "subscribe", "subscriptions": subscriptions}))
            elif frame[0] == MESSAGE_DATA:
                subscription, _log_time = struct.unpack_from("<IQ", frame, 1)
                self.received.setdefault(self.channels[subscription]["topic"], []).append(frame[13:])

    def json(self, topic: str) -> list[dict]:
        return [json.loads(payload) for payload in self.received[topic]]

    def protobuf(self, topic: str) -> list:
        """The payloads of a protobuf channel, decoded with the schema its advertisement carries."""
        channel = next(c for c in self.channels.values() if c["topic"] == topic)
        assert channel["encoding"] == "protobuf" and channel["schemaName"] == "foxglove.RawImage"
        pool = descriptor_pool.DescriptorPool()
        for file in descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode(channel["schema"])).file:
            pool.Add(file)
        cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(channel["schemaName"]))
        return [cls.FromString(payload) for payload in self.received[topic]]


def status(name: str, values: dict[str, str]) -> DiagnosticStatus:
    return DiagnosticStatus(name=name, message="OK", values=[KeyValue(key=k, value=v) for k, v in values.items()])


def test_a_foxglove_client_receives_every_channel(ros, spawn):
    port = free_port()
    bridge = spawn("foxglove_bridge", {"port": port, "cameras": list(CAMERAS)})
    node = ros.node("session")
    pixels = {c: np.random.default_rng(i).integers(0, 255, (6, 8, 3), dtype=np.uint8) for i, c in enumerate(CAMERAS)}
    executed = Chunk(np.arange(20, dtype=np.float32).reshape(5, 4) / 8, AXES, Source.ACTOR, chunk_id=7,
                     stamp_ns=3_500_000_000, policy_version=4)
    reference = Chunk(-executed.data, AXES, Source.VLA, chunk_id=6, stamp_ns=3_500_000_000)
    diagnostics = DiagnosticArray(status=[status("/learner", {"critic_q_mean": "0.42", "updates": "10"}),
                                          status("/actor", {"weights_version": "3"})])
    sent = [
        *((node.create_publisher(Image, f"camera/{c}/image_raw", qos.SENSOR), convert.image_to_msg(pixels[c]))
          for c in CAMERAS),
        (node.create_publisher(VlaOutput, "vla/output", qos.VLA_OUTPUT),
         VlaOutput(reference=convert.chunk_to_msg(reference))),
        (node.create_publisher(ActionChunk, "action_chunk", qos.CONTROL), convert.chunk_to_msg(executed)),
        (node.create_publisher(EpisodeEvent, "episode/events", qos.EVENTS),
         convert.event_to_msg(Event(EventKind.HANDOFF, episode_id=2, step=30, detail="geometric"))),
        (node.create_publisher(DiagnosticArray, "/diagnostics", QoSProfile(depth=10)), diagnostics),
    ]
    ready = f"Foxglove WebSocket server on ws://127.0.0.1:{port}"  # logged once the node is built
    ros.spin_until(lambda: all(pub.get_subscription_count() for pub, _ in sent) and ready in bridge.output(), 30,
                   lambda: f"the bridge's subscriptions and {ready!r}\n{bridge.output()}")
    with connect(f"ws://127.0.0.1:{port}", subprotocols=[SUBPROTOCOL], open_timeout=10) as ws:
        viewer = Viewer(ws)

        def publish_and_poll() -> bool:  # a message is forwarded only once the client subscribed: keep sending
            for pub, msg in sent:
                pub.publish(msg)
            viewer.poll()
            return set(TOPICS) <= set(viewer.received)

        ros.spin_until(publish_and_poll, 30,
                       lambda: f"data on {TOPICS}, got {sorted(viewer.received)}\n{bridge.output()}")

    for camera in CAMERAS:
        image = viewer.protobuf(f"/camera/{camera}/image_raw")[0]
        assert (image.width, image.height, image.encoding, image.step) == (8, 6, "rgb8", 24)
        assert image.data == pixels[camera].tobytes()
    chunk = viewer.json("/action_chunk")[0]
    assert chunk == {"stamp": 3.5, "chunk_id": 7, "source": "ACTOR", "policy_version": 4, "axis_names": list(AXES),
                     "rows": executed.data.tolist(), "columns": {a: executed.data[:, j].tolist()
                                                                for j, a in enumerate(AXES)}}
    ref = viewer.json("/vla/output/reference")[0]
    assert (ref["source"], ref["chunk_id"], ref["policy_version"], ref["rows"]) == (
        "VLA", 6, -1, reference.data.tolist())
    assert viewer.json("/episode/events")[0] | {"stamp": 0} == {
        "stamp": 0, "episode_id": 2, "event": "HANDOFF", "step": 30, "detail": "geometric"}
    report = next(m["status"] for m in viewer.json("/diagnostics") if m["status"][0]["name"] == "/learner")
    assert [(s["name"], s["level"], s["values"]) for s in report] == [  # (the bridge's own reports come there too)
        ("/learner", 0, {"critic_q_mean": "0.42", "updates": "10"}), ("/actor", 0, {"weights_version": "3"})]
    critic = viewer.json("/rl/critic")
    assert {c["node"] for c in critic} == {"/learner"}  # the actor's status has no critic gauge
    assert (critic[0]["q_mean"], critic[0]["updates"]) == (0.42, 10.0)

    # a second bridge on a taken port ends at startup (exit 2) naming why, as a node with a bad parameter does
    taken = spawn("foxglove_bridge", {"port": port}, name="foxglove_bridge_2")
    ros.spin_until(lambda: taken.proc.poll() is not None, 30, lambda: f"the second bridge's exit\n{taken.output()}")
    assert taken.proc.returncode == 2 and "Address already in use" in taken.output(), taken.output()

    assert bridge.stop() == 0, bridge.output()
    with pytest.raises(ConnectionRefusedError):  # the server stopped with the node
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_the_learners_critic_value_reaches_rl_critic(ros, spawn, tiny_rl_params):
    port = free_port()
    bridge = spawn("foxglove_bridge", {"port": port, "cameras": ["front"]})
    learner = spawn("learner", tiny_rl_params)
    node = ros.node("replay_source")
    transitions = node.create_publisher(Transition, "rl/transitions", qos.REPLAY)
    ready = f"Foxglove WebSocket server on ws://127.0.0.1:{port}"
    ros.spin_until(lambda: transitions.get_subscription_count() and ready in bridge.output(), 30,
                   lambda: f"the learner's replay subscription and the bridge\n{learner.output()}\n{bridge.output()}")
    rng = np.random.default_rng(0)
    for k in range(40):  # learning starts after 4; critic_q_mean appears with the first update that kept its losses
        transitions.publish(convert.transition_to_msg(Sample(
            rng.normal(size=8), rng.normal(size=12), rng.normal(0, 1e-3, (10, 4)), rng.normal(0, 1e-3, (10, 4)),
            np.zeros(10), False, False, rng.normal(size=8), rng.normal(size=12), rng.normal(0, 1e-3, (10, 4)),
            step=k)))
    with connect(f"ws://127.0.0.1:{port}", subprotocols=[SUBPROTOCOL], open_timeout=10) as ws:
        viewer = Viewer(ws)

        def critic() -> bool:
            viewer.poll()
            return "/rl/critic" in viewer.received

        ros.spin_until(critic, 30, lambda: f"the learner's critic on /rl/critic\n{learner.output()}")
    value = viewer.json("/rl/critic")[0]
    assert value["node"] == "/learner" and np.isfinite(value["q_mean"]) and value["updates"] > 0, value
