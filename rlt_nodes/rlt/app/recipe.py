"""The demonstrations the VLA's default configs are calibrated on, as code (`record_vla_demos`).

This module owns the recipe (`RECIPE`, the optional `APPROACH` part, the teleoperator `EXPERT`) and the recording
of the VLA's own rollouts for the RL token's goal entries (`record_vla_rollouts`); recording itself is
`rlt.sim.demos`. The datasets go into one folder, which `train_vla` / `train_token` accept as is (read in name order).

Why these datasets and this teleoperator, with the measurements: docs/models.md, section `rlt.app.recipe`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from rlt.sim.config import ExpertConfig, RolloutConfig, SimConfig


@dataclasses.dataclass(frozen=True)
class DemoPart:
    """One dataset of the recipe."""

    name: str  # sub-folder
    mode: str  # "critical" or "full"
    episodes: int
    sim_changes: dict[str, Any]  # SimConfig fields that differ from the preset's defaults
    expert_seed: int


_WIDE_CRITICAL = {"critical_xy_range": 0.006, "handoff_xy_radius": 0.01, "critical_height_max": 0.025,
                  "handoff_height": 0.025, "critical_yaw_range": 0.1}
RECIPE: tuple[DemoPart, ...] = (DemoPart("critical", "critical", 400, _WIDE_CRITICAL, expert_seed=6),)
APPROACH = DemoPart("full", "full", 150, {}, expert_seed=7)
# the demo teleoperator: the true pose, no perception error (clean labels: docs/models.md), action noise kept
EXPERT = ExpertConfig(bias_xy_sigma=0.0, bias_yaw_sigma=0.0, perception_noise_xy_sigma=0.0,
                      perception_noise_yaw_sigma=0.0)


def recipe_parts(approach: bool = False) -> tuple[DemoPart, ...]:
    """The datasets of the recipe (plus the approach part when `approach`)."""
    return (*RECIPE, APPROACH) if approach else RECIPE


def record_vla_demos(out_dir: str | Path, preset: str = "main", image_size: int = 96, scale: float = 1.0,
                     progress: bool = True, approach: bool = False) -> Path:
    """Record the recipe's datasets under `out_dir` (parts already there are kept); returns `out_dir`.

    `scale` multiplies every part's episode count (e.g. 0.02 for a smoke test).
    """
    from rlt.sim.demos import record_demos  # deferred: imports MuJoCo

    out_dir = Path(out_dir)
    for part in recipe_parts(approach):
        target = out_dir / part.name
        if (target / "metadata.yaml").is_file():
            continue
        sim_cfg = SimConfig(preset=preset, image_size=image_size, **part.sim_changes)
        record_demos(target, max(1, round(part.episodes * scale)), sim_cfg,
                     EXPERT.replace(seed=part.expert_seed), mode=part.mode, keep="all", progress=progress)
    return out_dir


def record_vla_rollouts(vla_checkpoint: str | Path, out_dir: str | Path, cfg: RolloutConfig | None = None,
                        preset: str = "main", progress: bool = True) -> Path:
    """Record `cfg.episodes` episodes of the VLA checkpoint (`rlt.sim.demos.record_rollouts`) into the new dataset
    `out_dir`; returns `out_dir`."""
    from rlt.app.evaluate import chunk_policy  # deferred: imports torch
    from rlt.sim.demos import record_rollouts  # deferred: imports MuJoCo

    policy, cameras, image_size = chunk_policy(vla_checkpoint)
    sim_cfg = SimConfig(preset=preset, image_size=image_size, cameras=cameras)
    record_rollouts(out_dir, policy, sim_cfg, cfg or RolloutConfig(), progress=progress)
    return Path(out_dir)
