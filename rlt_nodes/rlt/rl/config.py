"""`RLConfig`: every tunable of the online actor–critic (networks, losses, schedule, replay, units, runtime).

This module owns the RL defaults, their cross-field checks and the named presets. The class defaults (preset
"paper") are the paper's method with the values it omits taken from the prototype (docs/architecture.md);
"peg_insert" holds the values tuned on the sim task, which the sim and the robot sessions both select
(`rl.preset` in launch/config/*.yaml), a robot overriding only `ROBOT_FIELDS`. It must not import torch, rclpy or
any message package.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from rlt.config import Config, ConfigError

DEVICES: tuple[str, ...] = ("cpu", "cuda", "auto")


@dataclasses.dataclass(frozen=True)
class RLConfig(Config):
    """Chunked TD3 with a reference-conditioned actor (RLT stage 2).

    Units: actions are normalized per dimension by `action_scale` (the physical bound, so normalized actions lie
    in [-1, 1]); `sigma` and `beta` act on normalized actions. Proprio is divided by `proprio_scale`.
    """

    # sizes: state x = (z_rl[token_dim], proprio[proprio_dim]); chunks are [chunk_len, action_dim]
    token_dim: int = 64  # RL-token size Z
    proprio_dim: int = 12  # proprio size P
    chunk_len: int = 10  # C, steps per action chunk
    action_dim: int = 4  # D, action dimensions per step
    hidden: tuple[int, ...] = (256, 256)  # hidden layer widths of the actor and of each critic

    # losses
    gamma: float = 0.99  # per control step; the chunk-level bootstrap uses gamma ** chunk_len
    tau: float = 0.005  # Polyak rate of the target networks (updated with every actor step)
    beta: float = 1.0  # BC weight on ||μ(x, ã_drop) − ã||² SUMMED over the C·D normalized dims, averaged over the batch
    sigma: float = 0.03  # std of the Gaussian exploration and target-policy noise, normalized action units
    # per action dim multiplier of β (dx, dy, dz, dyaw); () = β on every dim. A low z weight lets the critic speed
    # up the reference's descent, which the chunk-summed BC term otherwise prices far above the discount's gain
    # (it traded success for speed on the sim task: docs/results.md)
    beta_axes: tuple[float, ...] = ()
    ref_dropout: float = 0.5  # probability that a transition's reference is zeroed in the actor's input (training)
    use_reference: bool = True  # False: the actor never sees ã (pass-through ablation); the BC target stays ã
    # the range the return can take (the sim's sparse reward: 1 on success, else 0, so Q lies in [0, 1]); TD targets
    # are clipped to it, which stops the bootstrapped overestimation that diverged at high update counts
    value_range: tuple[float, ...] = (0.0, 1.0)

    # optimization schedule
    actor_lr: float = 3e-4  # Adam step size of the actor
    critic_lr: float = 3e-4  # Adam step size of both critics
    batch_size: int = 256  # transitions per update, sampled uniformly from the buffer
    utd: float = 5.0  # critic updates per transition added to the buffer
    actor_every: int = 2  # critic updates per actor update (TD3 delay)
    learning_starts: int = 128  # transitions in the buffer before the first update
    max_updates_per_s: float = 0.0  # rate cap of the learner loop; 0 = unlimited
    weights_every: int = 100  # critic updates between two actor-weight snapshots pushed to the actor

    # data
    warmup_episodes: int = 20  # episodes acted by the reference (VLA) before the actor takes over
    buffer_capacity: int = 200_000  # transitions; the oldest are overwritten
    stride: int = 2  # control steps between the starts of two stored chunk transitions
    action_scale: tuple[float, ...] = (0.004, 0.004, 0.004, 0.05)  # per-dim physical bound (m, m, m, rad)
    proprio_scale: tuple[float, ...] = (1.0,)  # per-dim divisor of proprio; one value applies to every dim

    # runtime
    num_threads: int = 0  # torch intra-op threads; 0 = leave torch's default
    seed: int = 0  # network initialization, exploration noise and batch sampling
    device: str = "cpu"  # cpu, cuda or auto (cuda when available)

    def validate(self) -> None:
        self.require_positive("token_dim", "chunk_len", "action_dim", "batch_size", "actor_every", "stride")
        self.require_positive("actor_lr", "critic_lr", "buffer_capacity", "weights_every")
        self.require_range("proprio_dim", 0, 1 << 20)
        if not self.hidden or min(self.hidden) <= 0:
            self.fail("hidden", "must list at least one layer width, all > 0")
        self.require_range("gamma", 0.0, 1.0)
        self.require_range("tau", 0.0, 1.0)
        self.require_range("ref_dropout", 0.0, 1.0)
        self.require_range("beta", 0.0, 1e6)
        self.require_range("sigma", 0.0, 1.0)
        if self.beta_axes and len(self.beta_axes) != self.action_dim:
            self.fail("beta_axes", f"needs one weight per action dim ({self.action_dim}) or none, "
                                   f"got {len(self.beta_axes)}")
        if self.beta_axes and min(self.beta_axes) < 0:
            self.fail("beta_axes", f"weights must be >= 0, got {self.beta_axes}")
        if len(self.value_range) != 2 or not self.value_range[0] < self.value_range[1]:
            self.fail("value_range", f"needs (low, high) with low < high, got {self.value_range}")
        self.require_range("utd", 0.0, 1e4)
        self.require_range("learning_starts", 1, self.buffer_capacity)
        self.require_range("max_updates_per_s", 0.0, 1e9)
        self.require_range("warmup_episodes", 0, 1 << 30)
        self.require_range("num_threads", 0, 1024)
        self.require_choice("device", DEVICES)
        if self.batch_size > self.buffer_capacity:
            self.fail("batch_size", f"must be <= buffer_capacity={self.buffer_capacity}")
        if self.chunk_len % self.stride:
            self.fail("stride", f"must divide chunk_len={self.chunk_len}, so the next state x_(t+C) is a stride step")
        if len(self.action_scale) != self.action_dim:
            self.fail("action_scale", f"needs one bound per action dim: {len(self.action_scale)} != "
                                      f"action_dim={self.action_dim}")
        if min(self.action_scale) <= 0:
            self.fail("action_scale", "bounds must be > 0")
        if len(self.proprio_scale) not in (1, self.proprio_dim):
            self.fail("proprio_scale", f"needs 1 or proprio_dim={self.proprio_dim} values, "
                                       f"got {len(self.proprio_scale)}")
        if min(self.proprio_scale) <= 0:
            self.fail("proprio_scale", "scales must be > 0")

    @property
    def bc_weights(self) -> tuple[float, ...]:
        """The BC weight of each of the chunk's C·D normalized dims, row-major ([C, D] flattened): β × beta_axes."""
        axes = self.beta_axes or (1.0,) * self.action_dim
        return tuple(self.beta * w for w in axes) * self.chunk_len

    @property
    def state_dim(self) -> int:
        """Size of x = (z_rl, proprio)."""
        return self.token_dim + self.proprio_dim

    def for_model(self, token_dim: int, proprio_dim: int, chunk_len: int, action_dim: int, source: str) -> RLConfig:
        """This config with the state sizes of the VLA at `source` (its rl_token Z and proprio P), which the model
        defines and no params file restates. A size set here that differs from the class default and from the
        model is a ConfigError (two sources disagree), as are C > H and another action dimension."""
        default = type(self)()
        for name, value in (("token_dim", token_dim), ("proprio_dim", proprio_dim)):
            mine = getattr(self, name)
            if mine != getattr(default, name) and mine != value:
                self.fail(name, f"set here, but {source} emits {value}: remove rl.{name}, the model defines it")
        if self.chunk_len > chunk_len:
            self.fail("chunk_len", f"is longer than the {chunk_len}-row reference chunks of {source}")
        if self.action_dim != action_dim:
            self.fail("action_dim", f"but {source} emits {action_dim} action dimensions")
        return self.replace(token_dim=token_dim, proprio_dim=proprio_dim)


# named RL settings: the values a preset changes from the class defaults. A params file selects one with
# `rl.preset` and may override single fields after it
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "peg_insert": {
        # proprio divisors (hand x, y, z m; yaw, pitch, roll rad; then their velocities m/s, rad/s): puts the
        # millimetre-scale motions of the critical phase at order 1 in the networks' input
        "proprio_scale": (0.005, 0.005, 0.005, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.5, 0.5, 0.5),
        # the actor's bound per step (m, m, m, rad) = 1 normalized unit: sub-millimetre lateral corrections are what
        # matters in the insertion, and a coarser bound makes the actor's imitation error as large as they are
        "action_scale": (0.0015, 0.0015, 0.004, 0.02),
        "sigma": 0.07,  # exploration std, normalized units: about 0.1 mm per step laterally
        "stride": 2,  # the paper's stride-2 windows
        "actor_lr": 1e-3,  # Adam step sizes: 15 minutes of data needs faster learning than the 3e-4 default
        "critic_lr": 1e-3,
        "beta": 0.5,  # BC weight: with the operator's chunks among the BC targets, a looser anchor pays off
        "chunk_len": 2,  # C: the actor re-plans every 2 control steps (0.1 s at 20 Hz)
    },
}
# the fields a robot session sets itself on top of its preset, with why: everything else is the tuned preset
ROBOT_FIELDS: dict[str, str] = {
    "action_scale": "the arm's per-step bound (= chunk_executor safety.max_ee_step)",
    "chunk_len": "C at the robot's control rate: the re-plan period must cover the VLA's latency on its hardware",
    "device": "where the learner runs on the robot's computer",
    "warmup_episodes": "robot episodes acted by the VLA alone before exploring: robot time is dear",
}


def resolve(block: Mapping[str, Any], source: str = "") -> RLConfig:
    """The RLConfig of a params file's `rl` block: its `preset` (default "paper"), then the block's other fields."""
    values = dict(block)
    name = values.pop("preset", "paper")
    if name not in PRESETS:
        raise ConfigError(f"rl.preset={name!r}{f' in {source}' if source else ''}: expected one of "
                          f"{', '.join(PRESETS)}")
    return RLConfig.from_dict({**PRESETS[name], **values}, source=source)
