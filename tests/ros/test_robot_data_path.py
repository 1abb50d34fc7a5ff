"""The robot data path at tiny sizes: the robot session's own nodes (vla, actor, chunk_executor, recorder, with
launch/config/robot.yaml) drive a fake ros2_control arm with fake cameras; the recording becomes a dataset
(`rlt dataset build`), an RL token is trained on it for a policy that is not this project's VLA (a CNN + MLP under
the embeddings contract), composed into the served graph, and the VLA node serves it to an actor."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from rlt_msgs.msg import ActionChunk, ChunkRequest, EpisodeEvent, VlaOutput
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory

from rlt.app.launch import LAUNCH_DIR, load_session, plan, write_params
from rlt.robot.executor import SIM_JOINTS
from rlt.types import ActionChunk as Chunk
from rlt.types import EpisodeEvent as Evt
from rlt.types import Event, Source
from rlt_nodes import convert, qos

pytestmark = [pytest.mark.ros, pytest.mark.sim]
SIZE = 16  # px, the tiny models' images
CHUNK = 4  # C: rows per chunk (the tiny VLA's H is 6)


class FakeRobot:
    """A ros2_control arm (joint_states at 50 Hz, follows each trajectory's first point) and two cameras (16 px
    rgb8 at 20 Hz, sensor QoS, a bright square where the hand is), as the realsense node and the controller
    publish them."""

    def __init__(self, ros) -> None:
        self.node = ros.node("fake_robot")
        self.q = np.array([0.0, 0.0, 0.1, 0.0, 0.0, 0.0])
        self.pub_joints = self.node.create_publisher(JointState, "joint_states", qos.STATE)
        self.pub_images = {c: self.node.create_publisher(Image, f"camera/{c}/image_raw", qos.SENSOR)
                           for c in ("front", "wrist")}
        self.node.create_subscription(JointTrajectory, "joint_trajectory_controller/joint_trajectory",
                                      self.on_trajectory, qos.CONTROL)
        self.node.create_timer(0.02, self.publish_joints)
        self.node.create_timer(0.05, self.publish_images)

    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def on_trajectory(self, msg: JointTrajectory) -> None:
        self.q = convert.joint_trajectory_from_msg(msg)[1].positions[0].copy()

    def publish_joints(self) -> None:
        self.pub_joints.publish(convert.proprio_to_joint_state(SIM_JOINTS, np.r_[self.q, np.zeros(6)], self.now_ns()))

    def publish_images(self) -> None:
        stamp = self.now_ns()
        for k, (camera, pub) in enumerate(self.pub_images.items()):
            image = np.full((SIZE, SIZE, 3), 40 + 60 * k, np.uint8)
            row, col = (int(np.clip((v + 0.05) / 0.1 * (SIZE - 4), 0, SIZE - 4)) for v in self.q[:2])
            image[row : row + 4, col : col + 4] = 230
            pub.publish(convert.image_to_msg(image, "rgb8", stamp, frame_id=camera))


def _robot_params(tmp: Path, model: Path, name: str = "robot") -> Path:
    """launch/config/robot.yaml with the tiny model and sizes, the recorder's bag under `tmp`."""
    params = yaml.safe_load((LAUNCH_DIR / "config" / "robot.yaml").read_text())
    params["/**"]["ros__parameters"]["model_path"] = str(model)
    params["/**"]["ros__parameters"]["rl"]["chunk_len"] = CHUNK
    params["vla"]["ros__parameters"]["image_size"] = SIZE
    params["actor"]["ros__parameters"]["actor"]["mode"] = "base"  # the VLA alone records the data
    executor = params["chunk_executor"]["ros__parameters"]["executor"]
    executor.update(max_chunk_age_s=2.0)  # a loaded CI machine answers slowly
    params["recorder"]["ros__parameters"]["recorder"]["out"] = str(tmp / "bag")
    return write_params(params, tmp / f"{name}_params.yaml")


class Nodes:
    """Some nodes of the robot session, started with the session's own command lines (`rlt.app.launch.plan`)."""

    def __init__(self, ros, params: Path, names: tuple[str, ...], logs: Path) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self.logs = logs
        self.procs = {}
        for launch in plan(load_session("robot"), params):
            if launch.node.name in names:
                out = open(logs / f"{launch.node.name}.log", "w")  # noqa: SIM115
                self.procs[launch.node.name] = subprocess.Popen(launch.cmd, env=ros.env(), stdout=out,
                                                                stderr=subprocess.STDOUT)
        assert set(self.procs) == set(names)

    def text(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-2500:]}" for p in sorted(self.logs.glob("*.log")))

    def stop(self, *names: str) -> None:
        for name in names or tuple(self.procs):
            proc = self.procs[name]
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait(ros, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    ros.spin_until(lambda: time.monotonic() > deadline, seconds + 5, f"{seconds} s")


def test_robot_recording_becomes_a_dataset_a_token_and_a_served_model(ros, tmp_path, tiny_model):
    from rlt.bags.dataset import BuildConfig, build_dataset
    from rlt.models.data import load_episodes
    from rlt.models.embed import stamp_embed_metadata, train_token_onnx
    from rlt.models.export import compose_onnx
    from rlt.models.onnx_vla import read_spec
    from rlt.models.testing import export_cnn_policy, tiny_token_config

    robot = FakeRobot(ros)
    node = ros.node("operator")
    requests: list[ChunkRequest] = []
    node.create_subscription(ChunkRequest, "chunk_request", requests.append, qos.CONTROL)
    events = node.create_publisher(EpisodeEvent, "teleop/events", qos.CONTROL)
    human = node.create_publisher(ActionChunk, "human/action_chunk", qos.CONTROL)
    nodes = Nodes(ros, _robot_params(tmp_path, tiny_model), ("vla", "actor", "chunk_executor", "recorder"),
                  tmp_path / "logs")
    try:
        ros.spin_until(lambda: events.get_subscription_count() >= 2 and human.get_subscription_count() >= 1, 60,
                       lambda: f"the executor and the actor\n{nodes.text()}")
        needed = ("/chunk_request", "/joint_states", "/camera/front/image_raw", "/camera/wrist/image_raw",
                  "/episode/events")
        ros.spin_until(lambda: all(f"recording {t} " in nodes.text() for t in needed) and "serving" in nodes.text(),
                       60, lambda: f"the recorder and the VLA\n{nodes.text()}")
        ros.spin_until(lambda: robot.pub_joints.get_subscription_count() >= 3  # vla, executor, recorder matched
                       and all(pub.get_subscription_count() >= 2 for pub in robot.pub_images.values()), 30,
                       lambda: f"the robot's subscribers\n{nodes.text()}")
        _wait(ros, 0.3)  # matched: now a few joint states and frames reach the bag before step 0's observation

        def operator(event: Event) -> None:
            events.publish(convert.event_to_msg(Evt(event, detail="test operator", stamp_ns=robot.now_ns())))

        def steps(episode: int) -> int:
            return max((r.step for r in requests if r.episode_id == episode), default=-1)

        for episode, (outcome, intervene) in enumerate([(Event.SUCCESS, False), (Event.SUCCESS, True),
                                                          (Event.FAILURE, False)]):
            operator(Event.START)
            ros.spin_until(lambda e=episode: steps(e) >= 12, 60, lambda: f"12 steps\n{nodes.text()}")
            if intervene:  # a person drives for a while and finishes the episode
                until = time.monotonic() + 0.6
                while time.monotonic() < until:
                    data = np.tile(np.array([0.001, 0.0, -0.001, 0.0], np.float32), (CHUNK, 1))
                    chunk = Chunk(data, ("dx", "dy", "dz", "dyaw"), Source.HUMAN, int(time.monotonic() * 1e3),
                                  robot.now_ns())
                    human.publish(convert.chunk_to_msg(chunk))
                    _wait(ros, 0.05)
                operator(Event.INTERVENE_END)  # the dead-man released, as teleop reports it
            operator(outcome)
            ros.spin_until(lambda e=episode: any(r.episode_id == e and r.terminal for r in requests), 30,
                           lambda: f"the episode's end\n{nodes.text()}")
        _wait(ros, 0.5)  # the last messages reach the recorder
        nodes.stop("recorder")
        assert nodes.procs["recorder"].returncode == 0, nodes.text()

        info = build_dataset([tmp_path / "bag"], tmp_path / "dataset",
                             # the fake arm and cameras publish from this test's process, which a loaded CI machine
                             # may starve for longer than a real robot's drivers ever pause
                             BuildConfig(instruction="insert the peg", control_hz=20.0, max_age_s=0.5))
        episodes = load_episodes(tmp_path / "dataset")
        assert [e.outcome for e in episodes] == ["success", "success", "failure"], info
        assert all(e.duration >= 12 and e.images["front"].shape[1:] == (SIZE, SIZE, 3) for e in episodes)
        assert all(np.isnan(e.tip_offset).all() for e in episodes)  # no privileged data on a robot
        human_steps = [int((e.sources == Source.HUMAN).sum()) for e in episodes]
        assert human_steps[0] == human_steps[2] == 0 and human_steps[1] >= CHUNK, human_steps

        # another lab's policy on the embeddings contract: a token on its embeddings of the recording, composed
        _, policy = export_cnn_policy(tmp_path / "policy.onnx")
        stamp_embed_metadata(policy, instruction="insert the peg")
        token = train_token_onnx(policy, tmp_path / "dataset", tmp_path / "token", tiny_token_config(),
                                 progress=False)
        served = compose_onnx(policy, token, tmp_path / "served.onnx").path
        spec = read_spec(served)
        assert (spec.image_size, spec.proprio_dim, spec.cameras) == (SIZE, 12, ("front", "wrist"))

        # served by the robot session's VLA node to its actor, every other node unchanged
        nodes.stop("vla", "actor")
        outputs: list[VlaOutput] = []
        node.create_subscription(VlaOutput, "vla/output", outputs.append, qos.VLA_OUTPUT)
        served_nodes = Nodes(ros, _robot_params(tmp_path, served, "served"), ("vla", "actor"), tmp_path / "logs2")
        try:
            ros.spin_until(lambda: "serving" in served_nodes.text() and human.get_subscription_count() >= 1, 60,
                           lambda: f"the served model\n{served_nodes.text()}")
            first = len(requests)
            operator(Event.START)
            ros.spin_until(lambda: steps(3) >= 8, 60, lambda: f"steps on the served model\n{served_nodes.text()}")
            operator(Event.SUCCESS)
            mine = [o for o in outputs if o.model_id == spec.model_id]
            assert mine and all(len(o.rl_token) == spec.token_dim and len(o.proprio) == 12 for o in mine)
            assert len(requests) > first and "dropped a message" not in served_nodes.text(), served_nodes.text()
        finally:
            served_nodes.stop()
    finally:
        nodes.stop()
