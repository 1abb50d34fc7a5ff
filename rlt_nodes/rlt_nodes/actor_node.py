"""actor: turns each `vla/output` into the executed `action_chunk` and the replay `rl/transitions`.

Listens to `rl/actor_weights` (durable: a late actor gets the latest snapshot) and swaps weights between chunks
only, to `human/action_chunk` (joystick intervention), which overrides the actor while it keeps coming, and to
`teleop/events`, whose INTERVENE_END hands control back at once. All decisions are in rlt.rl.actor_core.ActorCore.
"""

from __future__ import annotations

import dataclasses
import time

from rclpy.node import Node
from rlt_msgs.msg import ActionChunk, EpisodeEvent, PolicyWeights, Transition, VlaOutput

from rlt.config import Config
from rlt.diagnostics import Health
from rlt.rl.actor_core import ActorConfig, ActorCore
from rlt.rl.weights_file import load_weights
from rlt.types import Event
from rlt_nodes import convert, qos
from rlt_nodes.boundary import subscribe
from rlt_nodes.diagnostics import publish_diagnostics
from rlt_nodes.params import declare_config, declare_rl_config
from rlt_nodes.runner import run_node


@dataclasses.dataclass(frozen=True)
class ActorNodeConfig(Config):
    """The actor node's own parameters (unprefixed); the actor's decisions are `actor.*` (ActorConfig)."""

    human_timeout_s: float = 0.5  # s without a human chunk before the actor drives again (a lost gamepad)
    max_learner_wait_s: float = 30.0  # s a chunk waits for a lagging learner, then acts anyway (no deadlock); 0: never
    weights_file: str = ""  # actor snapshot (.npz) to start from, for evaluation; "" = the learner's weights only

    def validate(self) -> None:
        self.require_positive("human_timeout_s")
        if self.max_learner_wait_s < 0:
            self.fail("max_learner_wait_s", "must be >= 0 (0 = never wait)")


class ActorNode(Node):
    """Thin wrapper around ActorCore."""

    def __init__(self) -> None:
        super().__init__("actor")
        self.core = ActorCore(declare_rl_config(self), declare_config(self, ActorConfig, "actor"))
        node_cfg = declare_config(self, ActorNodeConfig)
        self.human_timeout_ns = int(node_cfg.human_timeout_s * 1e9)
        self.pub_chunk = self.create_publisher(ActionChunk, "action_chunk", qos.CONTROL)
        self.pub_transition = self.create_publisher(Transition, "rl/transitions", qos.REPLAY)
        # this process's transitions: the learner tells a re-delivery (after its restart) from a new transition of an
        # episode numbered again (after a driver restart) by (stream_id, episode_id, step)
        self.stream_id = time.time_ns() >> 1
        subscribe(self, VlaOutput, "vla/output", self.on_vla_output, qos.VLA_OUTPUT)
        subscribe(self, PolicyWeights, "rl/actor_weights", self.on_weights, qos.LATCHED)
        subscribe(self, ActionChunk, "human/action_chunk", self.on_human, qos.CONTROL)
        subscribe(self, EpisodeEvent, "teleop/events", self.on_teleop_event, qos.CONTROL)
        self.held: ActionChunk | None = None  # chunk waiting for the learner to catch up (lockstep sim)
        self.held_since = 0.0
        self.max_wait_s = node_cfg.max_learner_wait_s  # then act anyway (no deadlock)
        self.create_timer(0.02, self.release)
        # observation (request stamp) -> chunk published; the acting weights' version, learner step and age
        self.health = Health()
        self.weights_at = 0.0  # time.monotonic() the acting weights arrived
        publish_diagnostics(self, self.health)
        self.create_timer(1.0, self.weights_gauges)
        if node_cfg.weights_file:  # evaluation: start from a snapshot
            self.core.load_weights(load_weights(node_cfg.weights_file))
        rl = self.core.rl
        self.get_logger().info(f"mode {self.core.cfg.mode}, warmup {rl.warmup_episodes} episodes, sigma {rl.sigma:g}, "
                               f"beta {rl.beta:g}, C {rl.chunk_len}, token {rl.token_dim}, proprio {rl.proprio_dim}")

    def on_weights(self, msg: PolicyWeights) -> None:
        weights = convert.weights_from_msg(msg)
        if not self.core.load_weights(weights):
            self.get_logger().warning(f"ignored actor weights v{weights.version}: not newer than v"
                                      f"{self.core.policy.version} in use", throttle_duration_sec=10.0)
            return
        self.weights_at = time.monotonic()
        self.health.gauges |= {"weights_version": weights.version, "weights_learner_step": weights.learner_step}
        self.release()
        self.get_logger().debug(f"actor weights version {weights.version} parked for the next chunk")

    def weights_gauges(self) -> None:
        if self.weights_at:
            self.health.set("weights_age_s", time.monotonic() - self.weights_at)
        self.health.set("learner_behind", int(self.core.learner_behind))

    def on_human(self, msg: ActionChunk) -> None:
        self.core.set_human_chunk(convert.chunk_from_msg(msg), self.get_clock().now().nanoseconds)

    def on_teleop_event(self, msg: EpisodeEvent) -> None:
        event = convert.event_from_msg(msg)
        if event.event is Event.INTERVENE_END:
            self.core.end_intervention(event.stamp_ns)

    def on_vla_output(self, msg: VlaOutput) -> None:
        if self.core.expire_human(self.get_clock().now().nanoseconds, self.human_timeout_ns):
            self.get_logger().warning("no human chunk for human_timeout_s: the actor drives again")
        # a foreign or malformed answer raises before the core changes: the boundary drops it, the stream stays intact
        step = self.core.on_vla_output(convert.vla_output_from_msg(msg))
        for transition in step.transitions:
            transition.stream_id = self.stream_id
            self.pub_transition.publish(convert.transition_to_msg(transition))
        if step.chunk is not None:
            self.held, self.held_since = convert.chunk_to_msg(step.chunk), time.monotonic()
            self.held.vla_stamp = msg.reference.vla_stamp  # the stage times travel with the chunk
            self.release()

    def release(self) -> None:
        if self.held is None:
            return
        now = time.monotonic()
        if self.core.learner_behind and now - self.held_since < self.max_wait_s:
            self.get_logger().info("waiting for the learner to catch up", throttle_duration_sec=5.0)
            return
        if self.core.learner_behind:
            self.get_logger().warning(
                f"learner still behind after {self.max_wait_s:.0f} s: acting anyway", throttle_duration_sec=30.0
            )
        now = self.get_clock().now()
        self.held.sent_stamp = now.to_msg()
        self.pub_chunk.publish(self.held)
        self.health.latency("obs_to_chunk", (now.nanoseconds - convert.stamp_to_ns(self.held.header.stamp)) * 1e-9)
        self.held = None


def main(argv: list[str] | None = None) -> int:
    return run_node(ActorNode, argv)
