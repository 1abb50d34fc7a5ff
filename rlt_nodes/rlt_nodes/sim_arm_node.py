"""sim_arm: the MuJoCo insertion task as a ros2_control arm with RealSense-like cameras, at wall-clock speed.

What the robot session expects of its hardware, so that it runs unchanged against the sim (session `rehearsal`):
- the joint_trajectory_controller: subscribes `trajectory_msgs/JointTrajectory` on `controller_topic` and follows
  it as `rlt.sim.arm.SimArm` samples it;
- the joint_state_broadcaster: `joint_states` (positions and velocities of the sim's joints, reliable as a
  broadcaster offers them) at `arm.control_hz`;
- one camera node per camera: `camera/<name>/image_raw` (rgb8, `sim.image_size` px: the VLA's copy) and
  `camera/<name>/camera_info`, sensor-data QoS, at `arm.camera_hz`;
- the person at the gamepad: `rlt.sim.arm.SimJudge` presses START, HANDOFF, SUCCESS and RESET on `operator_topic`
  (off with `judge.enabled: false`). It runs in this node because it reads the sim's state at every control step:
  here it sees exactly the physics the arm steps, and no privileged topic exists that a policy could subscribe to.
Everything is stamped with and timed by the wall clock (use_sim_time false). The node logs, every `report_every_s`,
how much of the wall-clock time the physics and the cameras took (the real-time headroom) and the episodes so far.
"""

from __future__ import annotations

import dataclasses
import time

from rclpy.node import Node
from rlt_msgs.msg import EpisodeEvent
from sensor_msgs.msg import CameraInfo, Image, JointState
from trajectory_msgs.msg import JointTrajectory

from rlt.config import Config
from rlt.sim.arm import ENDS, ArmConfig, JudgeConfig, SimArm, SimJudge
from rlt.sim.config import SimConfig
from rlt.sim.env import PegInsertEnv
from rlt.sim.episode_log import EpisodeLog
from rlt.types import EpisodeEvent as Evt
from rlt.types import Event
from rlt_nodes import convert, qos
from rlt_nodes.boundary import subscribe
from rlt_nodes.params import declare_config
from rlt_nodes.runner import finish, run_node


@dataclasses.dataclass(frozen=True)
class SimArmNodeConfig(Config):
    """The sim arm node's own parameters (unprefixed); the scene is `sim.*`, the arm `arm.*`, the judge `judge.*`."""

    controller_topic: str = "joint_trajectory_controller/joint_trajectory"  # chunk_executor's controller_topic
    operator_topic: str = "teleop/events"  # where the judge presses its buttons: chunk_executor's operator_topic
    report_every_s: float = 10.0  # s between log lines on real-time headroom and episodes; 0 = never
    episode_log: str = ""  # JSON-lines file, one line per ended episode (what the judge saw), for evaluation

    def validate(self) -> None:
        for name in ("controller_topic", "operator_topic"):
            if not getattr(self, name):
                self.fail(name, "needs a topic name")
        if self.report_every_s < 0:
            self.fail("report_every_s", "must be >= 0 (0 = never)")


class SimArmNode(Node):
    """Thin wrapper: JointTrajectory / episode events in -> SimArm + SimJudge -> joint states, images, buttons."""

    def __init__(self) -> None:
        super().__init__("sim_arm")
        sim_cfg = declare_config(self, SimConfig, "sim")
        arm_cfg = declare_config(self, ArmConfig, "arm")
        judge_cfg = declare_config(self, JudgeConfig, "judge")
        node_cfg = declare_config(self, SimArmNodeConfig)
        if self.get_parameter("use_sim_time").value:
            raise ValueError("sim_arm runs on the wall clock, as a robot does: set use_sim_time false")
        self.arm = SimArm(PegInsertEnv(sim_cfg), arm_cfg)
        self.judge = SimJudge(self.arm, judge_cfg)
        self.pub_joints = self.create_publisher(JointState, "joint_states", qos.STATE)
        self.cameras = {
            camera: (
                self.create_publisher(Image, f"camera/{camera}/image_raw", qos.SENSOR),
                self.create_publisher(CameraInfo, f"camera/{camera}/camera_info", qos.SENSOR),
                intrinsics,
                f"{camera}_color_optical_frame",  # as the realsense node names its frames (frame_prefix = name)
            )
            for camera, intrinsics in self.arm.intrinsics().items()
        }
        self.pub_operator = self.create_publisher(EpisodeEvent, node_cfg.operator_topic, qos.CONTROL)
        subscribe(self, JointTrajectory, node_cfg.controller_topic, self.on_trajectory, qos.CONTROL)
        subscribe(self, EpisodeEvent, "episode/events", self.on_event, qos.EVENTS)
        self.create_timer(1.0 / arm_cfg.control_hz, self.tick)
        self.create_timer(1.0 / arm_cfg.camera_hz, self.publish_images)
        if node_cfg.report_every_s:
            self.create_timer(node_cfg.report_every_s, self.report)
        self.busy_s = {"physics": 0.0, "cameras": 0.0}  # wall time spent in each, since the last report
        self.frames = 0
        self.episode_log = EpisodeLog(node_cfg.episode_log) if node_cfg.episode_log else None
        self.handoff: dict[int, tuple[int, int]] = {}  # episode -> (the executor's step, wall ns) at its HANDOFF
        self.control_hz = sim_cfg.control_hz  # Hz: the executor's step rate (the rehearsal's params keep them equal)
        self.since = (time.monotonic(), 0, 0)  # (wall s, stepped ns, skipped ns) at the last report
        self.get_logger().info(
            f"arm on {self.resolve_topic_name(node_cfg.controller_topic)} at {arm_cfg.control_hz:g} Hz, cameras "
            f"{', '.join(self.cameras)} ({sim_cfg.image_size} px at {arm_cfg.camera_hz:g} Hz), scenes {arm_cfg.mode} "
            f"from seed {arm_cfg.seed}; judge {'on' if judge_cfg.enabled else 'off'} "
            f"({self.judge.time_limit_ns * 1e-9:g} s limit) on {self.resolve_topic_name(node_cfg.operator_topic)}"
        )

    def now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def on_trajectory(self, msg: JointTrajectory) -> None:
        names, command = convert.joint_trajectory_from_msg(msg)
        self.arm.on_trajectory(names, command, self.now_ns(), convert.stamp_to_ns(msg.header.stamp))

    def on_event(self, msg: EpisodeEvent) -> None:
        event, now = convert.event_from_msg(msg), self.now_ns()
        self.arm.on_event(event, now)
        running = self.judge.running and self.judge.episode == event.episode_id
        self.judge.on_event(event, now)
        if event.event is Event.HANDOFF:
            self.handoff.setdefault(event.episode_id, (event.step, now))
        if event.event in ENDS:
            self.get_logger().info(f"episode {event.episode_id}: {event.event.name} after {event.step} steps "
                                   f"({event.detail})")
        if event.event in ENDS and running and self.episode_log is not None:
            step, at = self.handoff.get(event.episode_id, (event.step, now))
            self.episode_log.append({
                "episode": event.episode_id, "seed": self.arm.cfg.seed + event.episode_id, "end": event.event.name,
                "success": event.event is Event.SUCCESS, "steps": event.step, "critical_steps": event.step - step,
                "critical_wall_s": round((now - at) * 1e-9, 3), "control_hz": self.control_hz,
                "detail": event.detail,
            })

    def executor_ready(self) -> bool:
        """What a person checks before pressing START: the executor listens and the policy side is up."""
        return self.pub_operator.get_subscription_count() > 0 and self.count_publishers("action_chunk") > 0

    def tick(self) -> None:
        start = time.perf_counter()
        now = self.now_ns()
        self.arm.advance(now)
        position, velocity = self.arm.joint_state()
        self.pub_joints.publish(convert.joint_state_to_msg(self.arm.joint_names, position, velocity, now))
        self.busy_s["physics"] += time.perf_counter() - start
        if self.judge.done(now):
            self.get_logger().info(f"the judge is done: episodes {self.judge.outcomes}; ending the session")
            finish(self, 0)
            return
        for event, detail in self.judge.judge(now, self.executor_ready()):
            self.get_logger().info(f"judge presses {event.name}: {detail}")
            self.pub_operator.publish(convert.event_to_msg(Evt(event, max(self.judge.episode, 0), 0, detail, now)))

    def publish_images(self) -> None:
        start = time.perf_counter()
        now = self.now_ns()
        for camera, image in self.arm.render().items():
            image_pub, info_pub, intrinsics, frame_id = self.cameras[camera]
            image_pub.publish(convert.image_to_msg(image, "rgb8", now, frame_id))
            info_pub.publish(convert.camera_info_to_msg(intrinsics, now, frame_id))
        self.frames += 1
        self.busy_s["cameras"] += time.perf_counter() - start

    def report(self) -> None:
        wall0, stepped0, skipped0 = self.since
        wall = time.monotonic() - wall0
        stepped, skipped = (self.arm.stepped_ns - stepped0) * 1e-9, (self.arm.skipped_ns - skipped0) * 1e-9
        self.get_logger().info(
            f"real time: {stepped:.2f} s of physics in {wall:.2f} s (skipped {skipped:.2f} s); busy "
            f"{100 * self.busy_s['physics'] / wall:.1f} % physics + joint states, "
            f"{100 * self.busy_s['cameras'] / wall:.1f} % cameras ({self.frames / wall:.1f} frames/s); "
            f"episodes {self.judge.outcomes or 'none yet'}"
        )
        self.since = (time.monotonic(), self.arm.stepped_ns, self.arm.skipped_ns)
        self.busy_s = dict.fromkeys(self.busy_s, 0.0)
        self.frames = 0

    def destroy_node(self) -> None:
        if hasattr(self, "arm"):
            self.arm.env.close()
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    return run_node(SimArmNode, argv)
