"""sim_driver: runs the MuJoCo insertion task in lockstep with the policy side (see rlt.sim.driver).

Publishes `joint_states`, `sim/state` (for the sim camera), `chunk_request`, `episode/events` and `/clock`;
executes the `action_chunk` rows that answer its requests and the operator's commands on `teleop/events` (hand-off,
success, failure, reset). With driver.realtime_factor = 0 it steps as fast as
the nodes answer (sim time on /clock runs ahead of the wall clock), else at that multiple of real time.
"""

from __future__ import annotations

import dataclasses
import time

from rclpy.node import Node
from rlt_msgs.msg import ActionChunk, ChunkRequest, EpisodeEvent, SimState
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState

from rlt.config import Config
from rlt.sim.config import SimConfig
from rlt.sim.driver import ChunkRejected, DriverConfig, DriverOutput, SimDriver
from rlt.sim.env import TASK_INSTRUCTION, PegInsertEnv
from rlt.sim.episode_log import EpisodeLog
from rlt.sim.scene import JOINT_NAMES
from rlt.types import Event
from rlt_nodes import convert, qos
from rlt_nodes.boundary import subscribe
from rlt_nodes.params import declare_chunking, declare_config
from rlt_nodes.runner import finish, run_node


@dataclasses.dataclass(frozen=True)
class SimDriverNodeConfig(Config):
    """The sim driver node's own parameters (unprefixed); the episodes are `driver.*` (DriverConfig)."""

    request_timeout_s: float = 10.0  # s without an answer to a chunk request: it is sent again (a lost message)
    # nodes that must follow sim/state before the first episode (the camera; + the scripted human): in lockstep the
    # episodes run as fast as the actor answers, so a node matched late misses them; -1 = derived: 1 with
    # sim.cameras, else 0
    state_subscribers: int = -1
    instruction: str = TASK_INSTRUCTION  # language instruction sent with every chunk request (the VLA's prompt)
    episode_log: str = ""  # JSON-lines file, one line per finished episode, for offline evaluation; "" = none

    def validate(self) -> None:
        self.require_positive("request_timeout_s")
        if self.state_subscribers < -1:
            self.fail("state_subscribers", "must be >= 0, or -1 (derived: 1 with sim.cameras, else 0)")


class SimDriverNode(Node):
    """Thin wrapper: ROS I/O around `SimDriver`."""

    def __init__(self) -> None:
        super().__init__("sim_driver")
        sim_cfg = declare_config(self, SimConfig, "sim")
        self.cfg = declare_config(self, DriverConfig, "driver")
        node_cfg = declare_config(self, SimDriverNodeConfig)
        self.request_timeout = node_cfg.request_timeout_s
        self.state_subscribers = node_cfg.state_subscribers  # -1: derived, the camera if the sim renders any
        if self.state_subscribers < 0:
            self.state_subscribers = 1 if sim_cfg.cameras else 0
        instruction, log_path = node_cfg.instruction, node_cfg.episode_log
        self.episode_log = EpisodeLog(log_path) if log_path else None
        env = PegInsertEnv(sim_cfg.replace(cameras=()))
        self.driver = SimDriver(env, self.cfg, declare_chunking(self), instruction)
        self.exit_code = 0
        self.pub_joints = self.create_publisher(JointState, "joint_states", qos.LOCKSTEP)
        self.pub_state = self.create_publisher(SimState, "sim/state", qos.LOCKSTEP)
        self.pub_request = self.create_publisher(ChunkRequest, "chunk_request", qos.CONTROL)
        self.pub_events = self.create_publisher(EpisodeEvent, "episode/events", qos.EVENTS)
        self.pub_clock = self.create_publisher(Clock, "/clock", qos.STATE)
        subscribe(self, ActionChunk, "action_chunk", self.on_chunk, qos.CONTROL)
        subscribe(self, EpisodeEvent, "teleop/events", self.on_operator, qos.CONTROL)
        period = 1e-3 if self.cfg.realtime_factor == 0 else 1.0 / (sim_cfg.control_hz * self.cfg.realtime_factor)
        self.timer = self.create_timer(period, self.tick)
        self.requested_at = 0.0
        self.get_logger().info(
            f"preset {sim_cfg.preset}, mode {self.cfg.mode}, handoff {self.cfg.handoff}, "
            f"{'lockstep' if self.cfg.realtime_factor == 0 else f'{self.cfg.realtime_factor}x real time'}"
        )

    def peers_ready(self) -> bool:
        return (
            self.pub_state.get_subscription_count() >= self.state_subscribers
            and self.pub_request.get_subscription_count() > 0
            and self.count_publishers("action_chunk") > 0
        )

    def on_chunk(self, msg: ActionChunk) -> None:
        try:
            self.driver.submit_chunk(convert.chunk_from_msg(msg))
        except ChunkRejected as exc:  # part of the protocol (a stale or re-sent answer); malformed ones: the boundary
            self.get_logger().debug(str(exc))

    def on_operator(self, msg: EpisodeEvent) -> None:
        event = convert.event_from_msg(msg)
        if event.event in (Event.INTERVENE_BEGIN, Event.INTERVENE_END):
            return  # for the actor; the driver executes whatever chunk comes
        ignored = self.driver.operator(event.event)
        if ignored:
            self.get_logger().warning(f"operator command ignored: {ignored}")
        else:
            self.get_logger().info(f"operator: {event.event.name} ({event.detail})")

    def tick(self) -> None:
        if self.driver.episode_over:
            if self.driver.finished:
                self.get_logger().info(
                    f"done after {self.driver.episode_id + 1} episodes, "
                    f"{self.driver.critical_steps_total} critical-phase steps"
                )
                self.timer.cancel()
                finish(self, 0)
                return
            if self.driver.episode_id < 0 and not self.peers_ready():
                return
            self.publish(self.driver.begin_episode())
            return
        if self.driver.waiting_for_chunk:
            if time.monotonic() - self.requested_at > self.request_timeout and self.driver.pending_request:
                self.get_logger().warning(f"no chunk for {self.request_timeout:.0f} s: re-sending the request")
                self.pub_request.publish(convert.request_to_msg(self.driver.pending_request))
                self.requested_at = time.monotonic()
            return
        # lockstep: run the whole queued chunk now; real time: one row per tick
        while True:
            out = self.driver.step()
            self.publish(out)
            if self.cfg.realtime_factor or self.driver.waiting_for_chunk or out.episode_over:
                return

    def publish(self, out: DriverOutput) -> None:
        self.pub_clock.publish(Clock(clock=convert.ns_to_stamp(out.stamp_ns)))
        self.pub_joints.publish(convert.proprio_to_joint_state(JOINT_NAMES, out.proprio, out.stamp_ns))
        self.pub_state.publish(convert.sim_state_to_msg(out.sim_state))
        for event in out.events:
            self.pub_events.publish(convert.event_to_msg(event))
        if out.summary is not None and self.episode_log is not None:
            self.episode_log.append(out.summary)
        if out.request is not None:
            self.pub_request.publish(convert.request_to_msg(out.request))
            self.requested_at = time.monotonic()


def main(argv: list[str] | None = None) -> int:
    return run_node(SimDriverNode, argv)
