"""A simulated ros2_control arm for the rehearsal session, and the scripted judge that stands in for its operator.

This module owns the hardware side of a rehearsal (the robot session, unchanged, against the sim at wall-clock
speed), free of ROS:
- `SimArm` is the peg-insertion task (`PegInsertEnv`) behind a joint_trajectory_controller and a
  joint_state_broadcaster. It holds the latest trajectory (`rlt.robot.executor.Command`, joints by name) and
  samples it as the controller does: linear in time between points, from the reference at the trajectory's receipt
  (the controller's open-loop start) to its points at their `time_from_start`, then holding the last point. It steps
  MuJoCo in control periods up to the wall-clock time the caller passes in (ns), so the physics keeps pace with
  real time (a caller that falls more than `max_lag_s` behind skips the rest, counted in `skipped_ns`), gives the
  joint positions and velocities a broadcaster publishes, and renders the cameras on request.
- Episodes: the scene of episode k is reset with seed `seed + k` in `mode` ("critical": near the hole, as the sim
  session trains), before the first START and `reset_delay_s` after each episode end the executor reports on
  `episode/events` (SUCCESS, FAILURE, TIMEOUT, RESET): a person puts the scene back while the arm holds. A reset
  drops the held trajectory (the arm holds its new pose until the next command).
- `SimJudge` is the operator's eyes, and nothing else: a robot has no success sensor, so a person at the gamepad
  presses START, HANDOFF when the peg is near the hole, SUCCESS when it is in, and RESET when an attempt runs past
  the time limit. The judge sends those `teleop/events` from the sim's state (`PegInsertEnv.success`,
  `in_critical_phase`): the outcome a person sees, never an input of the policy (the VLA sees the cameras and the
  joint states only).
Times are passed in (ns) by the caller, so every rule is tested with literal clocks.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rlt.config import Config
from rlt.robot.executor import SIM_JOINTS, Command
from rlt.robot.imaging import Intrinsics
from rlt.seeds import TRAINING
from rlt.sim.config import MODES, SimConfig
from rlt.sim.env import PegInsertEnv
from rlt.sim.scene import JOINT_NAMES
from rlt.types import EpisodeEvent, Event

__all__ = ["ENDS", "ArmConfig", "JudgeConfig", "SimArm", "SimJudge"]

if SIM_JOINTS != JOINT_NAMES:  # the executor's defaults drive this scene's joints
    raise ImportError(f"rlt.robot.executor.SIM_JOINTS {SIM_JOINTS} != rlt.sim.scene.JOINT_NAMES {JOINT_NAMES}")

ENDS: tuple[Event, ...] = (Event.SUCCESS, Event.FAILURE, Event.TIMEOUT, Event.RESET)  # events that end an episode


@dataclasses.dataclass(frozen=True)
class ArmConfig(Config):
    """The simulated arm: its controller rate, its scenes and how it keeps pace (the scene itself is `SimConfig`)."""

    control_hz: float = 100.0  # Hz, the controller manager's update rate: trajectory samples and joint_states
    camera_hz: float = 30.0  # Hz, camera frames, as the robot's RealSense streams them
    mode: str = "critical"  # scene of each episode: "critical" near the hole (as the sim session trains), or "full"
    seed: int = TRAINING.first  # episode k's scene is reset with seed + k: online RL trains on the training range
    reset_delay_s: float = 0.5  # s after an episode's end before its scene is reset: the executor's stop point lands
    max_lag_s: float = 0.2  # s: physics this far behind the wall clock skips ahead instead of catching up

    def validate(self) -> None:
        self.require_positive("control_hz", "camera_hz", "max_lag_s")
        self.require_choice("mode", MODES)
        if self.reset_delay_s < 0:
            self.fail("reset_delay_s", "must be >= 0")


@dataclasses.dataclass(frozen=True)
class JudgeConfig(Config):
    """The scripted operator of a rehearsal: when it presses which button."""

    enabled: bool = True  # false: a person at the gamepad (or `rlt robot event`) runs the episodes
    time_limit_s: float = 0.0  # s from START to RESET without success; 0 = the sim's episode limit for the arm's mode
    start_delay_s: float = 0.5  # s after a scene reset before START: the executor sees the new pose first
    retry_s: float = 3.0  # s without the executor's answer (its START or end event) before pressing again
    handoff: bool = True  # press HANDOFF once the peg is in the critical phase (at START in mode "critical")
    episodes: int = 0  # stop after this many episodes ended (the node then ends the session); 0 = never
    budget_s: float = 0.0  # s of wall clock from the first START after which no episode starts; 0 = no budget

    def validate(self) -> None:
        if self.episodes < 0 or self.budget_s < 0:
            self.fail("episodes" if self.episodes < 0 else "budget_s", "must be >= 0 (0 = no limit)")
        if self.time_limit_s < 0:
            self.fail("time_limit_s", "must be >= 0 (0 = the sim's limit)")
        if self.start_delay_s < 0:
            self.fail("start_delay_s", "must be >= 0")
        self.require_positive("retry_s")


@dataclasses.dataclass
class _Trajectory:
    start_ns: int
    origin: np.ndarray  # float64[N]: the reference when it was received
    times_ns: np.ndarray  # int64[K], increasing, > 0
    positions: np.ndarray  # float64[K, N], in JOINT_NAMES order


class SimArm:
    """See the module docstring. `env` must have been built with the cameras the session needs."""

    joint_names: tuple[str, ...] = JOINT_NAMES

    def __init__(self, env: PegInsertEnv, cfg: ArmConfig) -> None:
        self.env, self.cfg = env, cfg
        substeps = 1.0 / (cfg.control_hz * env.cfg.dt)
        if abs(substeps - round(substeps)) > 1e-6:
            raise ValueError(f"ArmConfig.control_hz={cfg.control_hz}: 1 / (control_hz * sim.dt={env.cfg.dt}) = "
                             f"{substeps:.4g} physics steps per period; must be an integer")
        self.substeps = round(substeps)
        self.period_ns = round(1e9 / cfg.control_hz)
        self.scene_episode = -1  # the episode the scene was last reset for
        self.sim_ns: int | None = None  # wall-clock time the physics has reached
        self.stepped_ns = 0  # physics time run so far
        self.skipped_ns = 0  # wall-clock time skipped because the caller fell behind
        self.reset_due: tuple[int, int] | None = None  # (time ns, episode) of the next scene reset
        self.reset_ns = 0  # when the scene was last reset
        self._trajectory: _Trajectory | None = None
        self._held = np.zeros(len(JOINT_NAMES))  # the reference when no trajectory runs
        self.reset_scene(0, 0)

    # ------------------------------------------------------------------ episodes
    def reset_scene(self, episode: int, now_ns: int) -> None:
        """The scene of `episode` (seed + episode, `mode`); the arm holds its new pose."""
        self.env.reset(self.cfg.seed + episode, self.cfg.mode)
        self.scene_episode, self.reset_ns, self.reset_due = episode, now_ns, None
        self._trajectory = None
        self._held = self.env.data.qpos[: len(JOINT_NAMES)].copy()

    def on_event(self, event: EpisodeEvent, now_ns: int) -> None:
        """An `episode/events` event of the executor: an episode's end schedules the next scene."""
        if event.event in ENDS and event.episode_id + 1 != self.scene_episode:
            self.reset_due = (now_ns + round(self.cfg.reset_delay_s * 1e9), event.episode_id + 1)

    @property
    def ready(self) -> bool:
        """The scene is set for the next episode (no reset pending)."""
        return self.reset_due is None

    # ------------------------------------------------------------------ the controller
    def on_trajectory(self, joint_names: tuple[str, ...], command: Command, now_ns: int, stamp_ns: int = 0) -> None:
        """A JointTrajectory (joints in any order, all of this arm's; points at increasing `times_s` > 0) replaces
        the held one from `stamp_ns` (0: on receipt, as chunk_executor sends it). No points: hold the reference.
        A malformed trajectory raises ValueError and changes nothing (the controller rejects it)."""
        origin = self.reference(now_ns)
        if len(command.times_s) == 0:
            self._trajectory, self._held = None, origin
            return
        names = tuple(joint_names)
        if sorted(names) != sorted(JOINT_NAMES) or len(set(names)) != len(names):
            raise ValueError(f"JointTrajectory.joint_names {list(names)}: expected each of {list(JOINT_NAMES)} once")
        order = [names.index(n) for n in JOINT_NAMES]
        positions = np.asarray(command.positions, np.float64)
        times = np.asarray(command.times_s, np.float64)
        if positions.shape != (len(times), len(names)):
            raise ValueError(f"JointTrajectory.points: positions {positions.shape} for {len(times)} points of "
                             f"{len(names)} joints")
        if not (np.isfinite(positions).all() and np.isfinite(times).all()):
            raise ValueError("JointTrajectory.points: non-finite positions or times")
        if times[0] <= 0 or (np.diff(times) <= 0).any():
            raise ValueError(f"JointTrajectory.points: time_from_start {times.tolist()} must increase from > 0")
        start = stamp_ns if stamp_ns > 0 else now_ns
        self._trajectory = _Trajectory(start, origin, np.round(times * 1e9).astype(np.int64), positions[:, order])

    def reference(self, t_ns: int) -> np.ndarray:
        """float64[6]: the controller's position reference at time t (JOINT_NAMES order)."""
        traj = self._trajectory
        if traj is None:
            return self._held.copy()
        tau = t_ns - traj.start_ns
        if tau <= 0:
            return traj.origin.copy()
        k = int(np.searchsorted(traj.times_ns, tau))  # the point being approached
        if k >= len(traj.times_ns):
            return traj.positions[-1].copy()
        t0, q0 = (0, traj.origin) if k == 0 else (traj.times_ns[k - 1], traj.positions[k - 1])
        alpha = (tau - t0) / (traj.times_ns[k] - t0)
        return q0 + alpha * (traj.positions[k] - q0)

    def advance(self, now_ns: int) -> int:
        """Step the physics in control periods up to `now_ns` (the first call only sets the clock); a due scene
        reset happens first. Returns the periods stepped."""
        if self.reset_due is not None and now_ns >= self.reset_due[0]:
            self.reset_scene(self.reset_due[1], now_ns)
        if self.sim_ns is None:
            self.sim_ns = now_ns
            return 0
        behind = now_ns - self.sim_ns
        if behind > self.cfg.max_lag_s * 1e9:
            skip = behind - self.period_ns
            self.skipped_ns += skip
            self.sim_ns += skip
        steps = 0
        while self.sim_ns + self.period_ns <= now_ns:
            self.sim_ns += self.period_ns
            self.env.drive(self.reference(self.sim_ns), self.substeps)  # the reference at the period's end
            steps += 1
        self.stepped_ns += steps * self.period_ns
        return steps

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        """(positions, velocities) float64[6] in JOINT_NAMES order (m, rad; m/s, rad/s), as measured."""
        d, n = self.env.data, len(JOINT_NAMES)
        return d.qpos[:n].copy(), d.qvel[:n].copy()

    def render(self) -> dict[str, np.ndarray]:
        """camera -> uint8[H, W, 3] of the current state."""
        return self.env.render_cameras()

    def intrinsics(self) -> dict[str, Intrinsics]:
        """camera -> the pinhole intrinsics of its images (MuJoCo's: square pixels, centred, no distortion)."""
        size = self.env.cfg.image_size
        out = {}
        for camera in self.env.cfg.cameras:
            fovy = float(self.env.model.camera(camera).fovy[0])  # deg, vertical
            f = size / 2 / np.tan(np.radians(fovy) / 2)
            out[camera] = Intrinsics(size, size, f, f, (size - 1) / 2, (size - 1) / 2)
        return out


class SimJudge:
    """The scripted operator of a rehearsal (see the module docstring): call `on_event` with every
    `episode/events` event and `judge` after each `SimArm.advance`; it returns the buttons to press."""

    def __init__(self, arm: SimArm, cfg: JudgeConfig) -> None:
        self.arm, self.cfg = arm, cfg
        sim: SimConfig = arm.env.cfg
        limit_s = cfg.time_limit_s or sim.max_steps(arm.cfg.mode) / sim.control_hz
        self.time_limit_ns = round(limit_s * 1e9)
        self.retry_ns = round(cfg.retry_s * 1e9)
        self.episode = -1  # the executor's current (or last) episode
        self.running = False
        self.handed_off = False
        self.started_ns = 0
        self.pressed: tuple[Event, int] | None = None  # (button, when) awaiting the executor's answer
        self.outcomes: dict[str, int] = {}  # episode ends by the event the executor reported (SUCCESS, RESET...)
        self.first_start_ns: int | None = None

    def on_event(self, event: EpisodeEvent, now_ns: int) -> None:
        if event.event is Event.START:
            self.episode, self.running, self.handed_off, self.started_ns = event.episode_id, True, False, now_ns
            self.pressed = None
            if self.first_start_ns is None:
                self.first_start_ns = now_ns
        elif event.event is Event.HANDOFF and event.episode_id == self.episode:
            self.handed_off = True
            if self.pressed and self.pressed[0] is Event.HANDOFF:
                self.pressed = None
        elif event.event in ENDS and event.episode_id == self.episode and self.running:
            self.running, self.pressed = False, None
            self.outcomes[event.event.name] = self.outcomes.get(event.event.name, 0) + 1

    def done(self, now_ns: int) -> bool:
        """No episode runs and none will start: `episodes` have ended, or the wall-clock `budget_s` is spent."""
        if self.running or not self.cfg.enabled:
            return False
        ended = sum(self.outcomes.values())
        spent = self.first_start_ns is not None and now_ns - self.first_start_ns >= self.cfg.budget_s * 1e9
        return bool(self.cfg.episodes and ended >= self.cfg.episodes) or bool(self.cfg.budget_s and spent)

    def judge(self, now_ns: int, executor_ready: bool = True) -> list[tuple[Event, str]]:
        """The buttons to press now, each with the detail the events carry; `executor_ready`: the executor listens
        and has the arm's joint states."""
        if not self.cfg.enabled:
            return []
        if self.pressed is not None and now_ns - self.pressed[1] < self.retry_ns:
            return []  # the executor has not answered the last press yet
        env = self.arm.env
        if not self.running:
            if self.done(now_ns):
                return []
            settled = self.arm.ready and now_ns - self.arm.reset_ns >= self.cfg.start_delay_s * 1e9
            if settled and executor_ready:
                return self._press(Event.START, f"judge: scene seed {self.arm.cfg.seed + self.arm.scene_episode}",
                                   now_ns)
            return []
        if env.success():
            return self._press(Event.SUCCESS, "judge: the peg is in", now_ns)
        if now_ns - self.started_ns > self.time_limit_ns:
            return self._press(Event.RESET, f"judge: no success in {self.time_limit_ns * 1e-9:g} s", now_ns)
        if self.cfg.handoff and not self.handed_off and env.in_critical_phase():
            return self._press(Event.HANDOFF, "judge: the peg is at the hole", now_ns)
        return []

    def _press(self, event: Event, detail: str, now_ns: int) -> list[tuple[Event, str]]:
        self.pressed = (event, now_ns)
        return [(event, detail)]
