"""chunk_executor: runs `action_chunk`s on a ros2_control arm through its joint_trajectory_controller, safely.

Subscribes to `joint_states` (any publisher QoS), `action_chunk` and `teleop/events` (the operator's RESET/START,
HANDOFF, SUCCESS, FAILURE from the gamepad's teleop node or `ros2 topic pub`; volatile: a restarted executor never
replays an old command); publishes a `trajectory_msgs/JointTrajectory` per control tick
on `controller_topic`, `chunk_request` (the VLA's cue) and `episode/events`. Every decision (limits, watchdog,
which chunk is accepted) is in rlt.robot.executor.ChunkExecutor; joint-state freshness uses arrival time, so the
arm's clock need not match this machine's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rclpy.node import Node
from rlt_msgs.msg import ActionChunk, ChunkRequest, EpisodeEvent, VlaOutput
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from rlt.config import Config
from rlt.diagnostics import Health
from rlt.robot.executor import ChunkExecutor, ChunkRejected, ExecutorConfig, ExecutorOutput
from rlt.robot.safety import SafetyConfig
from rlt_nodes import convert, qos
from rlt_nodes.boundary import subscribe
from rlt_nodes.diagnostics import publish_diagnostics
from rlt_nodes.params import declare_chunking, declare_config
from rlt_nodes.runner import run_node


@dataclasses.dataclass(frozen=True)
class ChunkExecutorNodeConfig(Config):
    """The executor node's own parameters (unprefixed): its topic names; the decisions are `executor.*`, `safety.*`."""

    controller_topic: str = "joint_trajectory_controller/joint_trajectory"  # JointTrajectory to your arm's controller
    operator_topic: str = "teleop/events"  # operator commands (RESET, HANDOFF, ...): teleop's gamepad or ros2 topic pub

    def validate(self) -> None:
        for name in ("controller_topic", "operator_topic"):
            if not getattr(self, name):
                self.fail(name, "needs a topic name")


class ChunkExecutorNode(Node):
    """Thin wrapper: topics in -> ChunkExecutor -> JointTrajectory / ChunkRequest / EpisodeEvent out."""

    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__("chunk_executor", **node_kwargs)
        cfg = declare_config(self, ExecutorConfig, "executor")
        self.core = ChunkExecutor(cfg, declare_config(self, SafetyConfig, "safety"), chunking=declare_chunking(self))
        self.joints = cfg.joint_names
        node_cfg = declare_config(self, ChunkExecutorNodeConfig)
        topic, operator_topic = node_cfg.controller_topic, node_cfg.operator_topic
        self.pub_trajectory = self.create_publisher(JointTrajectory, topic, qos.CONTROL)
        self.pub_request = self.create_publisher(ChunkRequest, "chunk_request", qos.CONTROL)
        self.pub_events = self.create_publisher(EpisodeEvent, "episode/events", qos.EVENTS)
        subscribe(self, JointState, "joint_states", self.on_joints, qos.SENSOR)
        subscribe(self, ActionChunk, "action_chunk", self.on_chunk, qos.CONTROL)
        # only the stamps: which request the VLA answered tells a stalled VLA from a stalled actor
        subscribe(self, VlaOutput, "vla/output", self.on_vla_output, qos.VLA_OUTPUT)
        subscribe(self, EpisodeEvent, operator_topic, self.on_operator, qos.CONTROL)
        self.create_timer(1.0 / cfg.control_hz, self.tick)
        self.health = Health()  # every chunk's stage latencies (rlt.robot.executor.STAGES), holds, missed steps
        publish_diagnostics(self, self.health)
        self.get_logger().info(
            f"{len(self.joints)} joints -> {self.resolve_topic_name(topic)} at {cfg.control_hz:g} Hz, "
            f"kinematics {cfg.kinematics}, operator commands on {self.resolve_topic_name(operator_topic)}"
        )

    def now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def on_joints(self, msg: JointState) -> None:
        try:
            position, _ = convert.joint_state_from_msg(msg, self.joints)
        except ValueError as exc:  # another publisher's joints (a gripper): not ours
            self.get_logger().debug(f"joint_states ignored: {exc}")
            return
        self.core.on_joint_state(position, self.now_ns())

    def on_vla_output(self, msg: VlaOutput) -> None:
        self.core.on_vla_output(convert.stamp_to_ns(msg.header.stamp))

    def on_chunk(self, msg: ActionChunk) -> None:
        chunk, now = convert.chunk_from_msg(msg), self.now_ns()
        try:
            self.core.submit_chunk(chunk, now)
        except ChunkRejected as exc:  # stale, duplicate or unsafe: the protocol's refusals (malformed: the boundary)
            self.health.count("chunks_refused")
            self.get_logger().warning(f"chunk refused: {exc}", throttle_duration_sec=1.0)
            return

    def on_operator(self, msg: EpisodeEvent) -> None:
        event = convert.event_from_msg(msg)
        self.get_logger().info(f"operator: {event.event.name} {event.detail}")
        self.publish(self.core.on_operator(event.event, self.now_ns(), event.detail))

    def tick(self) -> None:
        self.publish(self.core.tick(self.now_ns()))

    def publish(self, out: ExecutorOutput) -> None:
        for stage, seconds in out.stages.items():
            self.health.latency(stage, seconds)
        if out.stall:
            self.get_logger().warning(f"stall: {out.stall}; the arm holds until it answers")
        if out.resumed:
            self.get_logger().info(f"stall over: {out.resumed}")
        if out.hold_reason:
            self.health.count("holds")
            self.get_logger().warning(f"holding position: {out.hold_reason}")
        core = self.core
        stalled = f"{core.stalled} silent" if core.stalled else ""
        self.health.warning = stalled or (core.holding if core.running and core.holding else "")
        done = core.steps_executed + core.steps_missed
        self.health.gauges |= {"steps_executed": core.steps_executed, "steps_missed": core.steps_missed,
                               "fresh_chunk_share": core.steps_executed / done if done else 1.0,
                               "episode": core.episode_id, "stalls": core.stalls}
        if out.command is not None:
            self.pub_trajectory.publish(convert.joint_trajectory_to_msg(self.joints, out.command))
        for event in out.events:
            self.pub_events.publish(convert.event_to_msg(event))
        for request in out.requests:
            self.pub_request.publish(convert.request_to_msg(request))
        if out.limited:
            self.get_logger().info(f"limits applied: {', '.join(out.limited)}", throttle_duration_sec=2.0)


def main(argv: list[str] | None = None) -> int:
    return run_node(ChunkExecutorNode, argv)
