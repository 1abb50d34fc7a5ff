"""Demonstration datasets: scripted-teleop episodes recorded into one MCAP rosbag2, and read back as arrays.

This module owns the dataset layout. A dataset is one rosbag2 folder (metadata.yaml + one zstd-chunked MCAP file)
that `ros2 bag play`, `ros2 bag info` and Foxglove open as they are. Topics, all stamped with sim time (episode k
starts after episode k-1 ended, so stamps only increase):

* `camera/<name>/image_raw`  sensor_msgs/msg/Image, rgb8, one per camera and control step
* `joint_states`             sensor_msgs/msg/JointState: the proprio (hand pose x, y, z, yaw, pitch, roll as
                             position, their rates as velocity)
* `action`                   rlt_msgs/msg/ActionChunk, chunk_len 1, SOURCE_HUMAN: the teleoperator's clean label
                             for the step, stamped with the observation it was computed from (SOURCE_VLA in a
                             dataset of base-policy rollouts, `record_rollouts`: the policy's commanded action,
                             then SOURCE_HUMAN where an operator finished an episode the policy left stalled)
* `privileged/tip_offset`    geometry_msgs/msg/Pose2D: tip x, y in the hole frame [m], theta = yaw error [rad];
                             simulator ground truth for probes, never a policy input. Optional: a dataset built
                             from session recordings (`rlt.bags.dataset`, `rlt dataset build`) has none, and reads back
                             with `tip_offset` all NaN
* `episode/events`           rlt_msgs/msg/EpisodeEvent: START (detail = the language instruction) at the first
                             step, then SUCCESS, FAILURE or TIMEOUT (step = duration) one control period after the last

Dataset-level metadata (configs, instruction, counts) is JSON under the bag's custom-data key `rlt/dataset`; the
cameras are its `cameras`, or those of its `sim_config` (datasets recorded in the simulator).
"""

from __future__ import annotations

import bisect
import dataclasses
import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from rlt.bags.io import BagReader, BagWriter, header, time_msg
from rlt.seeds import DEMOS
from rlt.sim.config import ExpertConfig, RolloutConfig, SimConfig, check_mode
from rlt.sim.env import AXIS_NAMES, TASK_INSTRUCTION, PegInsertEnv
from rlt.sim.expert import ChunkFn, ExpertStep, ScriptedTeleop, finish, policy_rollout, rollout
from rlt.sim.scene import JOINT_NAMES

METADATA_KEY = "rlt/dataset"
KEEP_CHOICES: tuple[str, ...] = ("all", "success")
JOINTS_TOPIC = "joint_states"
ACTION_TOPIC = "action"
TIP_TOPIC = "privileged/tip_offset"
EVENTS_TOPIC = "episode/events"
EPISODE_GAP_NS = 10**9  # sim time left between two episodes
MAX_ATTEMPTS_PER_EPISODE = 10  # keep="success" gives up after this many attempts per requested episode
Attempt = Callable[[int], list[ExpertStep]]  # attempt k of a dataset -> its trajectory


def demo_seed(expert_seed: int, attempt: int) -> int:
    """Env seed of attempt `attempt` (0, 1, ...) of a dataset recorded with ExpertConfig.seed = `expert_seed`."""
    return DEMOS.seed(expert_seed * 2**20 + attempt)


def camera_topic(camera: str) -> str:
    """Image topic of `camera`."""
    return f"camera/{camera}/image_raw"


@dataclasses.dataclass(frozen=True)
class DemoEpisode:
    """One demonstration as arrays; T = duration (control steps), step t pairs observation t with label t."""

    images: dict[str, np.ndarray]  # camera -> uint8[T, H, W, 3]
    proprio: np.ndarray  # float32[T, 12], rlt.sim.env.PROPRIO_NAMES order
    actions: np.ndarray  # float32[T, 4], clean labels in AXIS_NAMES order (m, rad per step)
    tip_offset: np.ndarray  # float32[T, 3], privileged: tip x, y in the hole frame [m], yaw error [rad]; NaN if absent
    success: bool
    duration: int
    instruction: str
    sources: np.ndarray  # uint8[T], rlt.types.Source of each step's action (HUMAN: an intervention)
    outcome: str  # the end event: "success", "failure" or "timeout"
    # float32[P]: proprio at the end event (a dataset built from recordings stores it: the pose after the last
    # action); else the last step's observation, as the simulator's datasets always used
    final_proprio: np.ndarray


def record_demos(
    out_dir: Path | str,
    episodes: int,
    sim_cfg: SimConfig,
    expert_cfg: ExpertConfig,
    mode: str = "full",
    keep: str = "all",
    progress: bool = True,
) -> dict[str, Any]:
    """Record `episodes` scripted episodes into the new rosbag2 folder `out_dir`; returns the dataset metadata.

    keep="all" writes every attempt; keep="success" discards failed attempts and runs more until `episodes`
    successes are written (RuntimeError after MAX_ATTEMPTS_PER_EPISODE * episodes attempts). Attempt k resets the
    env with `demo_seed(expert_cfg.seed, k)`, and the teleoperator draws from one generator seeded with
    expert_cfg.seed, so a dataset is reproducible from its metadata.
    """
    check_mode(mode)
    if keep not in KEEP_CHOICES:
        raise ValueError(f"keep={keep!r}: expected one of {', '.join(KEEP_CHOICES)}")

    def start(env: PegInsertEnv) -> Attempt:
        teleop = ScriptedTeleop(env, expert_cfg)
        return lambda k: list(rollout(env, teleop, demo_seed(expert_cfg.seed, k), mode))

    info = {"mode": mode, "keep": keep, "expert_config": expert_cfg.to_dict()}
    return _record(out_dir, episodes, sim_cfg, start, keep, info, "demos", progress)


def record_rollouts(out_dir: Path | str, policy: ChunkFn, sim_cfg: SimConfig, cfg: RolloutConfig,
                    progress: bool = True) -> dict[str, Any]:
    """Record `cfg.episodes` episodes of a chunking `policy` into the new rosbag2 folder `out_dir`, in the demo
    dataset layout (the `action` topic holds the policy's commanded action, SOURCE_VLA); returns the metadata.

    At every query the policy's chunk is executed for `cfg.execute_steps` steps, each with Gaussian execution
    noise `cfg.noise`. An episode the policy leaves at its time limit is handed to an operator (`finish`, for
    `cfg.finish_steps` steps, SOURCE_HUMAN), as a person would finish a failed attempt on a robot, so its final
    pose labels the policy's stalled states as well. Episode k resets the env with `demo_seed(cfg.seed, k)`; the
    noise comes from one generator seeded with `cfg.seed`, the operator's from another.
    """
    noise = np.asarray(cfg.noise)  # float64[4], m and rad per step

    def start(env: PegInsertEnv) -> Attempt:
        rng = np.random.default_rng(cfg.seed)
        operator = ScriptedTeleop(env, ExpertConfig(), np.random.default_rng((cfg.seed, 1)))

        def attempt(k: int) -> list[ExpertStep]:
            steps = list(policy_rollout(env, policy, demo_seed(cfg.seed, k), cfg.mode, cfg.execute_steps, noise, rng))
            if cfg.finish_steps and not steps[-1].result.info["success"]:
                steps += finish(env, operator, steps[-1].result.obs, cfg.finish_steps)
            return steps

        return attempt

    info = {"mode": cfg.mode, "keep": "all", "rollout_config": cfg.to_dict()}
    return _record(out_dir, cfg.episodes, sim_cfg, start, "all", info, "rollouts", progress)


def _record(out_dir: Path | str, episodes: int, sim_cfg: SimConfig,
            start: Callable[[PegInsertEnv], Attempt], keep: str, info: dict[str, Any], desc: str,
            progress: bool) -> dict[str, Any]:
    """Write `episodes` trajectories of `attempt(k)` (k = 0, 1, ...; `attempt = start(env)`, once per dataset)
    into the new dataset `out_dir`: every attempt, or (keep="success") only successful ones."""
    if episodes < 1:
        raise ValueError(f"episodes={episodes}: must be >= 1")
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} exists; a dataset is written to a new folder")
    period_ns = round(1e9 / sim_cfg.control_hz)
    written, attempts, successes, steps = 0, 0, 0, 0
    durations: list[int] = []  # control steps of each written episode
    outcomes: list[bool] = []  # its success
    handovers, handover_successes = 0, 0  # episodes a second source took over (an operator finishing a policy's)
    with (
        PegInsertEnv(sim_cfg) as env,
        BagWriter(out_dir) as bag,
        tqdm(total=episodes, desc=desc, unit="ep", disable=not progress, dynamic_ncols=True) as bar,
    ):
        recorder = EpisodeWriter(bag, sim_cfg.cameras, period_ns)
        attempt = start(env)
        while written < episodes:
            if attempts >= MAX_ATTEMPTS_PER_EPISODE * episodes:
                raise RuntimeError(
                    f"only {written} of {episodes} successful episodes after {attempts} attempts; "
                    "lower the ExpertConfig noise or use keep='all'"
                )
            trajectory = attempt(attempts)
            attempts += 1
            success = bool(trajectory[-1].result.info["success"])
            successes += success
            handover = trajectory[0].source != trajectory[-1].source
            handovers += handover
            handover_successes += handover and success
            if keep == "success" and not success:
                continue
            recorder.write_trajectory(written, trajectory, success)
            written += 1
            steps += len(trajectory)
            durations.append(len(trajectory))
            outcomes.append(success)
            bar.update()
            bar.set_postfix(success=f"{(successes - handover_successes) / attempts:.0%}",
                            **({"finished": handover_successes} if handovers else {}))
        info = {
            "preset": sim_cfg.preset,
            **info,
            "instruction": TASK_INSTRUCTION,
            "episodes": written,
            "attempts": attempts,
            "successes_attempted": successes,
            "handovers": handovers,
            "handover_successes": handover_successes,
            "steps": steps,
            "episode_durations": durations,
            "episode_success": outcomes,
            "control_hz": sim_cfg.control_hz,
            "axis_names": list(AXIS_NAMES),
            "sim_config": sim_cfg.to_dict(),
        }
        text = json.dumps(info)
        bag.set_metadata(METADATA_KEY, text)
    return json.loads(text)  # as `read_dataset_info` returns it (tuples become lists)


OUTCOME_EVENTS = {"success": "SUCCESS", "failure": "FAILURE", "timeout": "TIMEOUT"}  # outcome -> EpisodeEvent kind


class EpisodeWriter:
    """Writes episodes as this layout's messages, on one control grid: START, then per step one image per camera, a
    joint state, an action (and the privileged tip offset when given), then the outcome event one period after the
    last step; the next episode starts `EPISODE_GAP_NS` later. Used by the simulator's recorders, the datasets built
    from session recordings (`rlt.bags.dataset`) and the test datasets (`rlt.models.testing`)."""

    def __init__(self, bag: BagWriter, cameras: Sequence[str], period_ns: int,
                 joint_names: Sequence[str] = JOINT_NAMES, axis_names: Sequence[str] = AXIS_NAMES,
                 privileged: bool = True) -> None:
        self.bag, self.cameras, self.period_ns = bag, tuple(cameras), period_ns
        self.joint_names, self.axis_names = list(joint_names), list(axis_names)
        self.privileged = privileged
        types = bag.types
        self._image = types["sensor_msgs/msg/Image"]
        self._joints = types["sensor_msgs/msg/JointState"]
        self._chunk = types["rlt_msgs/msg/ActionChunk"]
        self._pose2d = types["geometry_msgs/msg/Pose2D"]
        self._event = types["rlt_msgs/msg/EpisodeEvent"]
        for camera in self.cameras:
            bag.add_topic(camera_topic(camera), "sensor_msgs/msg/Image")
        bag.add_topic(JOINTS_TOPIC, "sensor_msgs/msg/JointState")
        bag.add_topic(ACTION_TOPIC, "rlt_msgs/msg/ActionChunk")
        if privileged:
            bag.add_topic(TIP_TOPIC, "geometry_msgs/msg/Pose2D")
        bag.add_topic(EVENTS_TOPIC, "rlt_msgs/msg/EpisodeEvent")
        self._chunk_id = 0
        self.next_start_ns = 0  # stamp of the next episode's START

    def write_trajectory(self, episode_id: int, trajectory: list[ExpertStep], success: bool) -> None:
        """One scripted (or policy) trajectory of the simulator, with its privileged tip offset."""
        self.write(
            episode_id,
            images={c: [step.obs.images[c] for step in trajectory] for c in self.cameras},
            proprio=[step.obs.proprio for step in trajectory],
            actions=[step.label for step in trajectory],
            sources=[getattr(self._chunk, f"SOURCE_{step.source.upper()}") for step in trajectory],
            outcome="success" if success else "timeout",
            instruction=TASK_INSTRUCTION,
            tip=[(step.tip_offset[0], step.tip_offset[1], step.yaw_error) for step in trajectory],
        )

    def write(self, episode_id: int, images: Mapping[str, Sequence[np.ndarray]], proprio: Sequence[np.ndarray],
              actions: Sequence[np.ndarray], sources: Sequence[int], outcome: str, instruction: str,
              tip: Sequence[Sequence[float]] | None = None) -> None:
        """One episode of T steps: images camera -> T uint8[H, W, 3], proprio T float[2J] (positions, then
        velocities), actions T float[D], sources T rlt.types.Source values, outcome success / failure / timeout,
        tip T (x, y, yaw error) when the writer is privileged."""
        bag, store, start_ns, j = self.bag, self.bag.store, self.next_start_ns, len(self.joint_names)
        self._write_event(episode_id, start_ns, self._event.START, 0, instruction)
        for t in range(len(actions)):
            stamp = start_ns + t * self.period_ns
            for camera in self.cameras:
                image = images[camera][t]  # uint8[H, W, 3]
                height, width = image.shape[:2]
                msg = self._image(
                    header=header(store, stamp, camera),
                    height=height,
                    width=width,
                    encoding="rgb8",
                    is_bigendian=0,
                    step=width * 3,
                    data=image.reshape(-1),
                )
                bag.write(camera_topic(camera), stamp, msg)
            state = np.asarray(proprio[t]).astype(np.float64)  # float64[2J]
            joints = self._joints(
                header=header(store, stamp), name=self.joint_names, position=state[:j], velocity=state[j:],
                effort=np.zeros(0),
            )
            bag.write(JOINTS_TOPIC, stamp, joints)
            chunk = self._chunk(
                header=header(store, stamp),
                chunk_id=self._chunk_id,
                source=int(sources[t]),
                policy_version=-1,  # not produced by learned actor weights
                vla_stamp=time_msg(store, 0),  # no VLA pass: the teleoperator's
                sent_stamp=time_msg(store, stamp),
                axis_names=self.axis_names,
                chunk_len=1,
                data=np.asarray(actions[t]).astype(np.float32),
            )
            self._chunk_id += 1
            bag.write(ACTION_TOPIC, stamp, chunk)
            if self.privileged:
                x, y, yaw = (float(v) for v in tip[t])
                bag.write(TIP_TOPIC, stamp, self._pose2d(x=x, y=y, theta=yaw))
        duration = len(actions)
        end = getattr(self._event, OUTCOME_EVENTS[outcome])
        self._write_event(episode_id, start_ns + duration * self.period_ns, end, duration, "")
        self.next_start_ns = start_ns + (duration + 1) * self.period_ns + EPISODE_GAP_NS

    def _write_event(self, episode_id: int, stamp: int, event: int, step: int, detail: str) -> None:
        msg = self._event(
            header=header(self.bag.store, stamp), episode_id=episode_id, event=event, step=step, detail=detail
        )
        self.bag.write(EVENTS_TOPIC, stamp, msg)


def read_dataset_info(path: Path | str) -> dict[str, Any]:
    """The dataset metadata stored by `record_demos` (configs, instruction, counts)."""
    with BagReader(path) as bag:
        return _dataset_info(bag)


def load_demos(path: Path | str) -> list[DemoEpisode]:
    """All episodes of the dataset at `path` (a folder written by `record_demos`, `record_rollouts` or
    `rlt.bags.dataset.build_dataset`), in recording order. Without the privileged topic, `tip_offset` is NaN."""
    with BagReader(path) as bag:
        info = _dataset_info(bag)
        cameras = tuple(info["cameras"] if "cameras" in info else info["sim_config"]["cameras"])
        topics = [camera_topic(c) for c in cameras] + [JOINTS_TOPIC, ACTION_TOPIC]
        privileged = TIP_TOPIC in bag.topics
        if privileged:
            topics.append(TIP_TOPIC)
        missing = [t for t in [*topics, EVENTS_TOPIC] if t not in bag.topics]
        if missing:
            raise ValueError(f"{path}: dataset without topic(s) {', '.join(missing)}; present: {', '.join(bag.topics)}")
        starts: list[int] = []  # stamp of each episode's START, increasing
        episodes: list[dict[str, Any]] = []
        for _, stamp, event in bag.messages([EVENTS_TOPIC]):
            if event.event == event.START:
                starts.append(stamp)
                episodes.append({"instruction": event.detail, "rows": defaultdict(list), "sources": []})
            else:
                outcome = {event.SUCCESS: "success", event.FAILURE: "failure"}.get(event.event, "timeout")
                episodes[-1].update(success=event.event == event.SUCCESS, duration=event.step, outcome=outcome)
        for topic, stamp, msg in bag.messages(topics):
            episode = episodes[bisect.bisect_right(starts, stamp) - 1]
            episode["rows"][topic].append(_row(topic, msg))
            if topic == ACTION_TOPIC:
                episode["sources"].append(msg.source)
    final = [np.asarray(e["final_proprio"], np.float32) for e in info.get("episode_list", ()) if "final_proprio" in e]
    demos = []
    for k, episode in enumerate(episodes):
        rows, duration = episode["rows"], episode.get("duration")
        counts = {topic: len(rows[topic]) for topic in topics}
        if duration is None or any(n != duration for n in counts.values()):
            raise ValueError(f"{path}: episode {k} is incomplete (duration {duration}, messages per topic {counts})")
        demos.append(
            DemoEpisode(
                images={c: np.stack(rows[camera_topic(c)]) for c in cameras},
                proprio=np.stack(rows[JOINTS_TOPIC]).astype(np.float32),
                actions=np.stack(rows[ACTION_TOPIC]),
                tip_offset=(np.stack(rows[TIP_TOPIC]).astype(np.float32) if privileged
                            else np.full((duration, 3), np.nan, np.float32)),
                success=episode["success"],
                duration=duration,
                instruction=episode["instruction"],
                sources=np.array(episode["sources"], np.uint8),
                outcome=episode["outcome"],
                final_proprio=final[k] if k < len(final) else np.stack(rows[JOINTS_TOPIC])[-1].astype(np.float32),
            )
        )
    return demos


def _dataset_info(bag: BagReader) -> dict[str, Any]:
    raw = bag.metadata.get(METADATA_KEY)
    if raw is None:
        raise ValueError(f"{bag.path} is not a demonstration dataset: no {METADATA_KEY!r} in its custom metadata")
    return json.loads(raw)


def _row(topic: str, msg: Any) -> np.ndarray:
    """The array one message contributes to its episode (see DemoEpisode for shapes and units)."""
    if topic == JOINTS_TOPIC:
        return np.concatenate([msg.position, msg.velocity])  # float64[12]
    if topic == ACTION_TOPIC:
        return msg.data  # float32[4]
    if topic == TIP_TOPIC:
        return np.array([msg.x, msg.y, msg.theta])  # float64[3]
    return msg.data.reshape(msg.height, msg.width, 3)  # uint8[H, W, 3]
