"""Closed-loop evaluation of a chunking policy in the simulator (`evaluate_vla`).

This module owns the base policy's evaluation protocol: reset with each seed of a fixed list (common random
numbers, so two policies are compared on the same episodes), query the policy at each chunk boundary, execute
the first `execute_steps` actions of the chunk open loop, re-plan, until success or the time limit. The policy
may be a VLA checkpoint, a `Vla` module, or anything with the `OnnxVla.infer` interface (`OnnxVla`, `FakeVla`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from rlt.seeds import TUNING
from rlt.sim.config import ExpertConfig, SimConfig, check_mode

if TYPE_CHECKING:
    from rlt.sim.env import Observation
    from rlt.sim.expert import ChunkFn, Perceive  # imports MuJoCo: for annotations only

DEFAULT_SEED0 = TUNING.first  # diagnostics choose settings: they run on the tuning seeds (rlt.seeds)


def evaluate_vla(
    policy: str | Path | Any,
    episodes: int = 100,
    mode: str = "critical",
    seed0: int = DEFAULT_SEED0,
    *,
    sim_cfg: SimConfig | None = None,
    execute_steps: int = 10,
    progress: bool = True,
) -> dict[str, Any]:
    """Success rate and episode lengths of `policy` on the episodes seeded seed0 .. seed0 + episodes - 1.

    Returns a dict: episodes, successes, success_rate, median_steps (over successful episodes; nan if none),
    mean_steps (all episodes; a failure counts its full length, the time limit), mode, seed0, execute_steps,
    wall_s.
    """
    from rlt.sim.env import PegInsertEnv  # deferred: imports MuJoCo
    from rlt.sim.expert import policy_rollout

    check_mode(mode)
    if episodes < 1:
        raise ValueError(f"episodes={episodes}: must be >= 1")
    chunk_fn, cameras, image_size = chunk_policy(policy)
    sim_cfg = sim_cfg or SimConfig(image_size=image_size)
    missing = [c for c in cameras if c not in sim_cfg.cameras]
    if missing or sim_cfg.image_size != image_size:
        raise ValueError(f"the policy needs cameras {cameras} at {image_size} px; the simulator renders "
                         f"{sim_cfg.cameras} at {sim_cfg.image_size} px")
    successes, lengths = [], []
    began = time.monotonic()
    with PegInsertEnv(sim_cfg) as env:
        for seed in tqdm(range(seed0, seed0 + episodes), desc=f"evaluate ({mode})", disable=not progress,
                         dynamic_ncols=True):
            info = deque(policy_rollout(env, chunk_fn, seed, mode, execute_steps), maxlen=1)[0].result.info
            successes.append(bool(info["success"]))
            lengths.append(int(info["duration"]))
    return {**_summary(successes, lengths), "mode": mode, "seed0": seed0, "execute_steps": execute_steps,
            "wall_s": time.monotonic() - began}


def evaluate_expert_baseline(
    episodes: int = 100,
    mode: str = "critical",
    seed0: int = DEFAULT_SEED0,
    *,
    sim_cfg: SimConfig | None = None,
    expert_cfg: ExpertConfig | None = None,
    perceive: Perceive | None = None,
    every: int = 10,
) -> dict[str, Any]:
    """The scripted teleoperator on the same seeds as `evaluate_vla`, with the same summary keys.

    With `perceive` (e.g. `goal_perception`), the teleoperator's x, y and yaw come from it every `every` steps
    (dead-reckoned in between) instead of from the simulator; `sim_cfg` must then render what it reads.
    """
    from rlt.sim.env import PegInsertEnv
    from rlt.sim.expert import ScriptedTeleop, run_episode

    check_mode(mode)
    sim_cfg = sim_cfg or SimConfig()
    if perceive is None:
        sim_cfg = sim_cfg.replace(cameras=())
    expert_cfg = expert_cfg or ExpertConfig()
    successes, lengths = [], []
    began = time.monotonic()
    with PegInsertEnv(sim_cfg) as env:
        for k, seed in enumerate(range(seed0, seed0 + episodes)):
            teleop = ScriptedTeleop(env, expert_cfg, np.random.default_rng((expert_cfg.seed, k)))
            success, duration = run_episode(env, teleop, seed, mode, perceive, every)
            successes.append(success)
            lengths.append(duration)
    return {**_summary(successes, lengths), "mode": mode, "seed0": seed0, "wall_s": time.monotonic() - began}


def goal_perception(model: Any, goal_scale: Sequence[float]) -> Perceive:
    """Perceive from a model's RL token (`infer` -> (chunk, rl_token)): its leading goal entries (the hand's x, y
    and yaw displacement to the goal, `TokenConfig.goal_scale` units) read as the tip's offset from the hole."""
    scale = np.asarray(goal_scale, np.float64)  # float64[3]: m, m, rad

    def perceive(obs: Observation) -> np.ndarray:
        return model.infer(obs.images, obs.proprio)[1][: len(scale)] * scale  # float64[3]

    return perceive


def _summary(successes: list[bool], lengths: list[int]) -> dict[str, Any]:
    ok, steps = np.array(successes), np.array(lengths)
    return {
        "episodes": len(ok),
        "successes": int(ok.sum()),
        "success_rate": float(ok.mean()),
        "median_steps": float(np.median(steps[ok])) if ok.any() else float("nan"),
        "mean_steps": float(steps.mean()),
    }


def chunk_policy(policy: str | Path | Any) -> tuple[ChunkFn, tuple[str, ...], int]:
    """(chunk function, cameras, image size) of a checkpoint path, a `Vla`, or an object with `infer`."""
    if isinstance(policy, str | Path):
        from rlt.models.vla import load_vla

        policy = load_vla(policy)
    if hasattr(policy, "infer"):
        spec = policy.spec
        return (lambda images, proprio: policy.infer(images, proprio)[0]), spec.cameras, spec.image_size
    import torch

    from rlt.models.vla import Vla

    if not isinstance(policy, Vla):
        raise TypeError(f"cannot evaluate a {type(policy).__name__}: expected a checkpoint path, a Vla, or an "
                        "object with infer(images, proprio)")
    model, cfg = policy.eval(), policy.cfg

    @torch.no_grad()
    def chunk_fn(images: dict[str, np.ndarray], proprio: np.ndarray) -> np.ndarray:
        stacked = torch.from_numpy(np.stack([images[c] for c in cfg.cameras])[None])  # uint8[1, K, S, S, 3]
        chunk, _ = model(stacked, torch.from_numpy(proprio[None]))
        return model.to_physical(chunk)[0].numpy()

    return chunk_fn, cfg.cameras, cfg.image_size
