"""Scripted teleoperator: a privileged P-controller with tunable imperfections, and episode runners for it (and,
`policy_rollout`, for any chunking policy).

This module owns the demonstrator whose success rate and episode durations are the "scripted teleop" reference
of the benchmark. It reads privileged simulator state (tip offset, yaw error), so it exists only in simulation.
The controller aligns the peg 15 mm above the perceived hole (or at its start height, if lower), descends,
slows down near the rim, stops correcting x/y and yaw once the tip reaches the chamfer so that the chamfer and
the compliant servos centre the peg, and pushes gently (about 10 N). It does not search: a perception bias larger
than the chamfer leaves it stalled on the rim until the time limit, which is the headroom left for RL.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Callable, Iterator

import numpy as np

from rlt.sim.config import ExpertConfig
from rlt.sim.env import ACTION_DIM, Observation, PegInsertEnv, StepResult

ALIGN_HEIGHT = 0.015  # m, tip height above the rim at which the expert aligns before descending
FINISH_HEIGHT = 0.003  # m, tip height above the rim at which an operator finishing a stalled attempt re-aligns
_GAIN = 0.5  # P gain: fraction of the remaining error commanded per control step
_ALIGN_XY_TOLERANCE = 0.0005  # m, start the descent once aligned this well ...
_ALIGN_YAW_TOLERANCE = math.radians(1)  # rad
_ALIGN_Z_TOLERANCE = 0.002  # m
_DESCENT_XY_STEP = 0.001  # m, max x/y correction per step while descending
_DESCENT_YAW_STEP = 0.02  # rad, max yaw correction per step while descending
_CONTACT_HEIGHT = 0.001  # m, below this tip height (on the chamfer) x/y and yaw corrections stop
_SLOW_HEIGHT = 0.008  # m, descend slowly from this tip height (servo lag: contact at <= 16 mm/s) ...
_SLOW_DEPTH = -0.003  # m, ... down to this depth below the rim, then fast again inside the hole
_FAST_DESCENT = 0.0016  # m per step (32 mm/s at 20 Hz)
_SLOW_DESCENT = 0.0008  # m per step
_MAX_PUSH_LEAD = 0.005  # m, z target at most this below the hand: <= 10 N down force with the 2000 N/m servo

ChunkFn = Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray]  # (images, proprio[P]) -> chunk[H, D], physical
Perceive = Callable[[Observation], np.ndarray]  # obs -> float64[3]: tip x, y off the hole axis (world, m), yaw error


@dataclasses.dataclass(frozen=True)
class ExpertStep:
    """One step of a scripted episode: what was seen, what was commanded, and what happened."""

    obs: Observation  # observation the action was computed at
    tip_offset: np.ndarray  # float64[3], privileged tip position in the hole frame at `obs`, m
    yaw_error: float  # rad, privileged peg yaw error at `obs` (mod pi)
    executed: np.ndarray  # float64[4], action sent to the env (label + DART noise)
    label: np.ndarray  # float64[4], the teleoperator's intended action (recorded as the demonstration)
    result: StepResult  # outcome of executing `executed`
    source: str = "human"  # who commanded it: "human" (the teleoperator) or "vla" (a policy, `policy_rollout`)


@dataclasses.dataclass(frozen=True)
class ExpertStats:
    """Aggregate of scripted episodes."""

    episodes: int
    success_rate: float
    mean_duration: float  # control steps, successful episodes only (nan if none succeeded)
    max_penetration: float  # m, deepest contact penetration over all episodes


class ScriptedTeleop:
    """P-controller on the simulator's pose seen through a per-episode perception bias and per-step perception noise
    (`ExpertConfig`; all zero = the true pose, privileged), with per-step action noise and DART execution noise."""

    def __init__(
        self, env: PegInsertEnv, cfg: ExpertConfig, rng: np.random.Generator | None = None, gain: float = _GAIN,
        on_targets: bool = False,
    ) -> None:
        self.env = env
        self.cfg = cfg
        self.gain = gain  # P gain: fraction of the remaining error commanded per step (lower when actions are held)
        # P terms steer the servo targets (error minus servo lead) instead of the measured pose: with a low gain and
        # held actions, this is what brings a peg pushed onto the rim (targets up to 1 cm below it) back up in time
        self.on_targets = on_targets
        self.rng = np.random.default_rng(cfg.seed) if rng is None else rng
        self._bound = env.cfg.action_bounds  # float64[4]
        self._noise = np.array([cfg.action_noise_xyz_sigma] * 3 + [cfg.action_noise_yaw_sigma])  # float64[4]
        self._dart = np.array([cfg.dart_xyz_sigma] * 3 + [cfg.dart_yaw_sigma])  # float64[4]
        self._bias_xy = np.zeros(2)  # m, perceived minus true hole position, hole frame
        self._bias_yaw = 0.0  # rad
        self._align_height = ALIGN_HEIGHT
        self._aligned = False

    @property
    def perception_bias(self) -> tuple[np.ndarray, float]:
        """This episode's (hole xy error float64[2] in the hole frame [m], hole yaw error [rad])."""
        return self._bias_xy.copy(), self._bias_yaw

    def reset(self, align_height: float | None = None) -> None:
        """Start a new episode (call after `env.reset`): draw the perception bias, go back to aligning, at
        `align_height` (m above the rim) or by default at ALIGN_HEIGHT, or the current height if lower."""
        self._bias_xy = self.rng.normal(0.0, self.cfg.bias_xy_sigma, 2)
        self._bias_yaw = float(self.rng.normal(0.0, self.cfg.bias_yaw_sigma))
        if align_height is None:
            align_height = min(ALIGN_HEIGHT, float(self.env.tip_offset()[2]))
        self._align_height = align_height
        self._aligned = False

    def act(self, perceived: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(executed, label) float64[4] actions for the current state; executed = label + DART noise.

        `perceived` float64[3] (tip x, y offset from the hole axis in the world frame [m], peg yaw error [rad])
        replaces the privileged x, y and yaw (a perception under test); the height stays privileged."""
        tip = self.env.tip_offset()
        yaw = self.env.yaw_error()
        if perceived is not None:
            tip = np.array([*_rotate(-self.env.hole_yaw(), perceived[:2]), tip[2]])
            yaw = float(perceived[2])
        seen_xy, seen_yaw = self._bias_xy, self._bias_yaw  # perceived minus true hole pose: m (hole frame), rad
        if self.cfg.perception_noise_xy_sigma or self.cfg.perception_noise_yaw_sigma:  # no draw: same stream as before
            seen_xy = seen_xy + self.rng.normal(0.0, self.cfg.perception_noise_xy_sigma, 2)
            seen_yaw = seen_yaw + float(self.rng.normal(0.0, self.cfg.perception_noise_yaw_sigma))
        xy_error = _rotate(self.env.hole_yaw(), seen_xy - tip[:2])  # float64[2], world frame, m
        yaw_error = seen_yaw - yaw
        height = tip[2]
        lead = self.env.servo_lead()[:ACTION_DIM] if self.on_targets else np.zeros(ACTION_DIM)  # float64[4]
        action = np.zeros(ACTION_DIM)
        if not self._aligned:
            action[:2] = self.gain * (xy_error - lead[:2])
            action[2] = self.gain * (self._align_height - height - lead[2])
            action[3] = self.gain * (yaw_error - lead[3])
            self._aligned = bool(
                np.linalg.norm(xy_error) < _ALIGN_XY_TOLERANCE
                and abs(yaw_error) < _ALIGN_YAW_TOLERANCE
                and abs(height - self._align_height) < _ALIGN_Z_TOLERANCE
            )
        else:
            if height > _CONTACT_HEIGHT:
                action[:2] = np.clip(self.gain * (xy_error - lead[:2]), -_DESCENT_XY_STEP, _DESCENT_XY_STEP)
                action[3] = np.clip(self.gain * (yaw_error - lead[3]), -_DESCENT_YAW_STEP, _DESCENT_YAW_STEP)
            action[2] = -_SLOW_DESCENT if _SLOW_DEPTH < height < _SLOW_HEIGHT else -_FAST_DESCENT
            action[2] = max(action[2], -_MAX_PUSH_LEAD - self.env.servo_lead()[2])
        label = np.clip(action + self.rng.normal(0.0, self._noise), -self._bound, self._bound)
        executed = np.clip(label + self.rng.normal(0.0, self._dart), -self._bound, self._bound)
        return executed, label


def rollout(
    env: PegInsertEnv, teleop: ScriptedTeleop, seed: int, mode: str = "full", perceive: Perceive | None = None,
    every: int = 10,
) -> Iterator[ExpertStep]:
    """Reset `env` with `seed` in `mode` and run `teleop` until the episode ends, yielding every step.

    With `perceive`, `teleop` acts on its estimate instead of the privileged x, y and yaw: it is called every
    `every` steps (as a chunking policy is queried) and carried forward in between by the commanded motion (dead
    reckoning: the hand moves by what it is told)."""
    obs = env.reset(seed, mode)
    teleop.reset()
    yield from _teleop_steps(env, teleop, obs, perceive, every)


def finish(env: PegInsertEnv, teleop: ScriptedTeleop, obs: Observation, steps: int) -> Iterator[ExpertStep]:
    """An operator takes over an episode that timed out at observation `obs` and gets `steps` more control steps
    to finish the insertion: `teleop` lifts the peg to FINISH_HEIGHT above the rim, re-aligns and inserts."""
    env.extend(steps)
    teleop.reset(align_height=FINISH_HEIGHT)
    yield from _teleop_steps(env, teleop, obs)


def _teleop_steps(
    env: PegInsertEnv, teleop: ScriptedTeleop, obs: Observation, perceive: Perceive | None = None, every: int = 10
) -> Iterator[ExpertStep]:
    """Run `teleop` from observation `obs` until the episode ends, yielding every step (on `perceive`'s estimate,
    refreshed every `every` steps and dead-reckoned in between, when given: see `rollout`)."""
    k, estimate = 0, None
    while True:
        if perceive is not None and k % every == 0:
            estimate = np.array(perceive(obs), dtype=np.float64)  # float64[3]
        tip_offset, yaw_error = env.tip_offset(), env.yaw_error()
        executed, label = teleop.act(estimate)
        result = env.step(executed)
        yield ExpertStep(obs, tip_offset, yaw_error, executed, label, result)
        if result.terminated or result.truncated:
            return
        if estimate is not None:
            estimate += executed[[0, 1, 3]]  # the hand moves by what it is told
        obs, k = result.obs, k + 1


def policy_rollout(
    env: PegInsertEnv,
    policy: ChunkFn,
    seed: int,
    mode: str = "critical",
    execute_steps: int = 10,
    noise: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> Iterator[ExpertStep]:
    """Reset `env` with `seed` in `mode` and run a chunking `policy` until the episode ends, yielding every step.

    Each query's chunk is executed open loop for `execute_steps` steps. With `noise` (std float[4] of dx, dy, dz,
    dyaw, m and rad), each executed action gets Gaussian noise drawn from `rng`, clipped to the env's action bounds;
    the step's label stays the policy's action.
    """
    obs = env.reset(seed, mode)
    while True:
        chunk = np.asarray(policy(obs.images, obs.proprio), dtype=np.float64)  # float64[H, D], physical
        if execute_steps > len(chunk):
            raise ValueError(f"execute_steps={execute_steps} exceeds the policy's chunk of {len(chunk)}")
        for label in chunk[:execute_steps]:
            tip_offset, yaw_error = env.tip_offset(), env.yaw_error()
            executed = label
            if noise is not None:
                executed = np.clip(label + rng.normal(0.0, noise), -env.cfg.action_bounds, env.cfg.action_bounds)
            result = env.step(executed)
            yield ExpertStep(obs, tip_offset, yaw_error, executed, label, result, "vla")
            if result.terminated or result.truncated:
                return
            obs = result.obs


def run_episode(
    env: PegInsertEnv, teleop: ScriptedTeleop, seed: int, mode: str = "full", perceive: Perceive | None = None,
    every: int = 10,
) -> tuple[bool, int]:
    """Run one scripted episode (`rollout`); returns (success, duration in control steps)."""
    info = deque(rollout(env, teleop, seed, mode, perceive, every), maxlen=1)[0].result.info
    return bool(info["success"]), int(info["duration"])


def evaluate_expert(
    env: PegInsertEnv, cfg: ExpertConfig, episodes: int, mode: str = "full", first_seed: int = 0
) -> ExpertStats:
    """Run `episodes` scripted episodes with env seeds first_seed, first_seed + 1, ...

    Episode k's teleoperator draws from `default_rng((cfg.seed, k))`, so two configs that differ only in noise
    levels see the same scenes and the same standard-normal draws (common random numbers).
    """
    if episodes < 1:
        raise ValueError(f"episodes={episodes}: must be >= 1")
    successes, durations, penetration = [], [], 0.0
    for k in range(episodes):
        teleop = ScriptedTeleop(env, cfg, np.random.default_rng((cfg.seed, k)))
        success, duration = run_episode(env, teleop, first_seed + k, mode)
        successes.append(success)
        if success:
            durations.append(duration)
        penetration = max(penetration, env.max_penetration())
    return ExpertStats(
        episodes=episodes,
        success_rate=float(np.mean(successes)),
        mean_duration=float(np.mean(durations)) if durations else math.nan,
        max_penetration=penetration,
    )


def _rotate(angle: float, vector: np.ndarray) -> np.ndarray:
    """float64[2]: `vector` rotated by `angle` rad about +z."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([c * vector[0] - s * vector[1], s * vector[0] + c * vector[1]])
