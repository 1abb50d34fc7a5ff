"""The demonstrations the VLA's default configs are calibrated on, as code (`record_vla_demos`).

This module owns the recipe; recording itself is `rlt.sim.demos.record_demos`. The datasets go into one folder,
which `train_vla` / `train_token` accept as is (a folder of datasets is read in name order):

* `critical/`: 400 critical-phase episodes from a WIDER start distribution than the evaluation's (x/y offsets
  up to 6 mm instead of 3, 5-25 mm above the rim, yaw up to 0.1 rad). The x/y corrections the policy must
  learn happen in the first few steps of an episode; wider starts give more of those frames and larger ones.
* `full/` (`APPROACH`, only with `approach=True`): 150 full episodes (approach from 7.6 cm), so the base policy
  can also fly the approach before the hand-off to RL (`rlt session --set session.train_mode=full`). Not in the
  default: on the 3000-step budget the approach frames dilute the critical phase (a 2000-step checkpoint scored
  25 % critical-phase success with them, against 54 % for the default at 3000 steps).

The teleoperator has no perception bias and no DART noise (only its 0.1 mm per-step action noise): its labels
are then a function of what the cameras show. DART's execution noise made the chunk targets mostly unpredictable
(the expert's reactions to future noise) and the perception bias added label noise without teaching anything.
The VLA's own imprecision is what leaves it competent but imperfect.

`record_vla_rollouts` records the trained VLA's own critical-phase episodes (`rlt.sim.config.RolloutConfig`) for
the RL token's goal entries: the expert aligns before it descends, so near the rim the demos only show the peg
within about 0.5 mm of the hole, while the base policy and the RL actor reach the rim 1-3 mm off, where a
token trained on demos alone located the hole to 0.45 / 0.34 mm and 13 mrad (0.28 / 0.25 mm and 9 mrad with
the rollouts; held-out rollout frames of successful episodes). An operator finishes the episodes the VLA leaves
stalled on the rim (`RolloutConfig.finish_steps`), so those states are labelled too: at the first frame within
3 mm of the rim of the episodes the VLA loses, the goal error went 0.66 / 0.46 mm, 32 mrad -> 0.38 / 0.28 mm,
22 mrad (80 evaluation seeds, against the sim's true offset).
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
# the demo teleoperator: the true pose, no perception error (clean labels; see the module docstring), action noise kept
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
    from rlt.models.evaluate import chunk_policy  # deferred: imports torch
    from rlt.sim.demos import record_rollouts  # deferred: imports MuJoCo

    policy, cameras, image_size = chunk_policy(vla_checkpoint)
    sim_cfg = SimConfig(preset=preset, image_size=image_size, cameras=cameras)
    record_rollouts(out_dir, policy, sim_cfg, cfg or RolloutConfig(), progress=progress)
    return Path(out_dir)
