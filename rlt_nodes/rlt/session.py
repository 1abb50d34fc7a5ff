"""The main job: build what is missing (demos, VLA, RL token, ONNX), train RLT online in a launched ROS 2 sim
session, evaluate the base VLA and RLT on one fixed list of seeds, and write the report.

Every phase is a launch of `launch/sessions.yaml` nodes (each its own process) with a params file derived from
`launch/config/sim.yaml`; artifacts are cached in `artifacts_dir` and reused when present. Pure Python: the ROS
side runs in the node processes.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from rlt.config import Config
from rlt.launch import Supervisor, load_session, plan, private_domain

# ablation -> RL parameters it changes (actor and learner alike)
ABLATIONS: dict[str, dict[str, Any]] = {
    "none": {},
    "beta0": {"rl.beta": 0.0},  # no BC regularizer toward the reference chunk
    "no_passthrough": {"rl.use_reference": False},  # the actor does not see the reference chunk
    "no_dropout": {"rl.ref_dropout": 0.0},  # no reference-action dropout
    "no_token": {},  # no RL token: z_rl := features of a self-supervised CNN on the raw images (vla_cnn.onnx)
}
# who may intervene in training -> the session it launches
OPERATORS: dict[str, str] = {"scripted": "sim_human", "none": "sim"}
# ablations whose policy reads the image-feature ONNX (artifacts/vla_cnn.onnx) instead of the RL token's
IMAGE_FEATURE_ABLATIONS: frozenset[str] = frozenset({"no_token"})


@dataclasses.dataclass(frozen=True)
class SessionConfig(Config):
    """Embedded defaults of `rlt session` (the README's first command)."""

    out_dir: str = "runs/sim_session"  # report, logs, learner checkpoints of this run
    artifacts_dir: str = "artifacts"  # cached demos, VLA, token and ONNX model (built when missing)
    preset: str = "main"  # sim difficulty preset
    demo_scale: float = 1.0  # multiplies the episode counts of the demo recipe and of the base-VLA rollouts
    rl_minutes: float = 15.0  # critical-phase sim time of online RL data
    # training episodes: "critical" (start at the hand-off state: all sim time goes to RL data) or "full" (the base
    # VLA flies the approach, the geometric trigger hands off to RL; its VLA is trained with the approach demos
    # too and cached apart, under artifacts_dir/with_approach)
    train_mode: str = "critical"
    train_max_episodes: int = 3000  # safety cap: stop training even if the RL-data budget was not reached
    eval_episodes: int = 150  # per policy, on the same seeds (common random numbers)
    eval_seed: int = 1_000_000  # first evaluation seed (demos and training use other seeds)
    train_seed: int = 100_000  # first training-episode seed
    learner_slack_updates: int = 500  # the sim waits when the learner is this far behind UTD x data
    ablation: str = "none"  # one of ABLATIONS: the paper's ablations, run the same way as the full method
    # who may take over in training: "scripted" (the sim's scripted operator, session sim_human, takes over where the
    # peg stalls on the rim: launch/config/sim.yaml, sim_human) or "none" (autonomous). Evaluation is autonomous
    operator: str = "scripted"
    tiny: bool = False  # seconds-scale models and budgets (CI): checks the plumbing, not the claims

    def validate(self) -> None:
        self.require_positive("demo_scale", "rl_minutes", "eval_episodes", "train_max_episodes")
        self.require_choice("train_mode", ("full", "critical"))
        self.require_choice("ablation", tuple(ABLATIONS))
        self.require_choice("operator", OPERATORS)


def _deep_merge(base: dict, extra: Mapping) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        out[key] = _deep_merge(out.get(key, {}), value) if isinstance(value, Mapping) else value
    return out


def _nest(values: Mapping[str, Any]) -> dict:
    """{'driver.mode': 'full'} -> {'driver': {'mode': 'full'}} (the nesting launch/config/*.yaml uses)."""
    out: dict = {}
    for key, value in values.items():
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _params(overrides: Mapping[str, Mapping[str, Any]], path: Path, session: str = "sim") -> Path:
    """The session's params YAML with per-node overrides {'node': {'ns.param': value}} merged in."""
    with open(load_session(session).params_file) as f:
        params = yaml.safe_load(f)
    for node, values in overrides.items():
        params = _deep_merge(params, {node: {"ros__parameters": _nest(values)}})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def keep_previous_run(out: Path) -> Path | None:
    """Move a previous run out of `out` (to `out`.<date-time>[-n]) so a new session starts from scratch: a
    finished run's learner checkpoint would otherwise be resumed. Returns where it went (None: nothing there)."""
    if not out.is_dir() or not any(out.iterdir()):
        return None
    stem = f"{out.name}.{time.strftime('%Y%m%d-%H%M%S')}"
    kept, n = out.with_name(stem), 1
    while kept.exists():
        kept, n = out.with_name(f"{stem}-{n}"), n + 1
    out.rename(kept)
    return kept


class SimSession:
    """Runs the phases of the main job; each returns what the next needs."""

    def __init__(self, cfg: SessionConfig, progress: bool = True) -> None:
        self.cfg, self.progress = cfg, progress
        self.out = Path(cfg.out_dir).resolve()
        self.art = Path(cfg.artifacts_dir).resolve() / ("with_approach" if cfg.train_mode == "full" else "")
        self.timings: dict[str, float] = {}
        self.node_restarts: dict[str, dict[str, int]] = {}  # phase -> node -> respawns (a node died mid-phase)

    # ------------------------------------------------------------------ artifacts
    def _model_configs(self) -> tuple[Any, Any, Any]:
        from rlt.models.config import TokenConfig, VlaConfig, VlaTrainConfig

        if not self.cfg.tiny:
            return VlaConfig(), VlaTrainConfig(), TokenConfig()
        from rlt.models.testing import tiny_token_config, tiny_train_config, tiny_vla_config

        return tiny_vla_config(image_size=96, chunk_len=10), tiny_train_config(), tiny_token_config()

    def build_artifacts(self) -> Path:
        """demos -> VLA -> base-VLA rollouts -> RL token -> ONNX, each step skipped when its output exists (the
        rollouts are re-recorded when recorded with another RolloutConfig, the token retrained when trained without
        these rollouts or before them, the ONNX re-exported when older than the token); returns the ONNX path."""
        from rlt.models.bc import train_vla
        from rlt.models.checkpoint import load_checkpoint
        from rlt.models.export import export_onnx
        from rlt.models.recipe import recipe_parts, record_vla_demos
        from rlt.models.rl_token import CHECKPOINT_KIND, train_token

        vla_cfg, train_cfg, token_cfg = self._model_configs()
        demos, vla_dir, token_dir = self.art / "demos" / self.cfg.preset, self.art / "vla", self.art / "token"
        onnx = self.art / "vla.onnx"
        t0 = time.monotonic()
        approach = self.cfg.train_mode == "full"
        if not all((demos / part.name / "metadata.yaml").is_file() for part in recipe_parts(approach)):
            print(f"[session] recording the scripted-teleop demos of the VLA recipe -> {demos}", flush=True)
            record_vla_demos(demos, self.cfg.preset, vla_cfg.image_size, self.cfg.demo_scale, self.progress, approach)
        if not (vla_dir / "vla.pt").is_file() or not (vla_dir / "DONE").is_file():
            print(f"[session] training the base VLA -> {vla_dir}", flush=True)
            train_vla(demos, vla_dir, vla_cfg, train_cfg, resume=(vla_dir / "vla.pt").is_file(), progress=self.progress)
            (vla_dir / "DONE").touch()
        if self.cfg.ablation in IMAGE_FEATURE_ABLATIONS:  # the RL token is not needed: skip it
            onnx = self.build_image_feature_onnx(vla_dir / "vla.pt", demos)
            self.timings["artifacts_s"] = time.monotonic() - t0
            return onnx
        rollouts = self.build_rollouts(vla_dir / "vla.pt")
        token = token_dir / "token.pt"
        trained_on = load_checkpoint(token, CHECKPOINT_KIND).get("rollouts") if token.is_file() else None
        if (trained_on is None or [Path(p).resolve() for p in trained_on] != [rollouts]
                or token.stat().st_mtime < (rollouts / "metadata.yaml").stat().st_mtime):
            print(f"[session] training the RL token (demos + base-VLA rollouts) -> {token_dir}", flush=True)
            token.unlink(missing_ok=True)  # trained on other data: no resume
            train_token(vla_dir / "vla.pt", demos, token_dir, token_cfg, rollouts=rollouts, progress=self.progress)
        if not onnx.is_file() or onnx.stat().st_mtime < token.stat().st_mtime:
            print(f"[session] exporting {onnx}", flush=True)
            export_onnx(vla_dir / "vla.pt", token_dir / "token.pt", onnx)
        self.timings["artifacts_s"] = time.monotonic() - t0
        return onnx

    def build_rollouts(self, vla_checkpoint: Path) -> Path:
        """The base VLA's own critical-phase episodes (`rlt.models.recipe.record_vla_rollouts`), cached under
        artifacts/rollouts/<preset> with the RolloutConfig they were recorded with; recorded under rollouts/.partial
        first, so an interrupted run leaves the cached ones as they were."""
        from rlt.models.recipe import record_vla_rollouts
        from rlt.sim.config import RolloutConfig
        from rlt.sim.demos import read_dataset_info

        out = self.art / "rollouts" / self.cfg.preset
        cfg = RolloutConfig()
        cfg = cfg.replace(episodes=max(2, round(cfg.episodes * self.cfg.demo_scale)))  # >= 1 train, 1 held out
        if (out / "metadata.yaml").is_file() and read_dataset_info(out).get("rollout_config") == cfg.to_dict():
            return out
        print(f"[session] recording {cfg.episodes} episodes of the base VLA (the RL token's goal data) -> {out}",
              flush=True)
        partial = out.parent / ".partial" / out.name  # same folder name: the bag's file is named after it
        shutil.rmtree(partial, ignore_errors=True)
        record_vla_rollouts(vla_checkpoint, partial, cfg, self.cfg.preset, self.progress)
        shutil.rmtree(out, ignore_errors=True)  # recorded with another RolloutConfig
        partial.rename(out)
        return out

    def build_image_feature_onnx(self, vla_checkpoint: Path, demos: Path) -> Path:
        """The "no RL token" ablation's model: the image-feature CNN (trained on `demos` unless cached in
        `artifacts/image_features/`) exported with the VLA as `artifacts/vla_cnn.onnx` (cached too)."""
        from rlt.models.config import ImageFeaturesConfig
        from rlt.models.export import export_onnx
        from rlt.models.image_features import CHECKPOINT_NAME, train_image_features
        from rlt.models.testing import tiny_image_features_config

        out_dir, onnx = self.art / "image_features", self.art / "vla_cnn.onnx"
        if not (out_dir / CHECKPOINT_NAME).is_file() or not (out_dir / "DONE").is_file():
            print(f"[session] training the image-feature encoder (no-RL-token ablation) -> {out_dir}", flush=True)
            cfg = tiny_image_features_config() if self.cfg.tiny else ImageFeaturesConfig()
            train_image_features(vla_checkpoint, demos, out_dir, cfg, progress=self.progress)
            (out_dir / "DONE").touch()
            onnx.unlink(missing_ok=True)  # exported from an older encoder
        if not onnx.is_file():
            print(f"[session] exporting {onnx}", flush=True)
            export_onnx(vla_checkpoint, out_dir / CHECKPOINT_NAME, onnx)
        return onnx

    # ------------------------------------------------------------------ launched phases
    def _run(self, phase: str, session: str, onnx: Path, overrides: Mapping[str, Mapping[str, Any]]) -> Path:
        """Launch `session` on the model `onnx` with overrides; the driver ends it; returns the phase's episode log."""
        log = self.out / f"{phase}_episodes.jsonl"
        log.unlink(missing_ok=True)
        shared = {"sim.preset": self.cfg.preset, "model_path": str(onnx)}  # the VLA serves it, RL nodes size on it
        merged = {"/**": shared, **{k: dict(v) for k, v in overrides.items()}}
        merged.setdefault("sim_driver", {})["episode_log"] = str(log)
        params = _params(merged, self.out / f"{phase}_params.yaml", session)
        print(f"[session] {phase}: launching {session} (logs: {self.out / 'logs' / phase})", flush=True)
        t0 = time.monotonic()
        supervisor = Supervisor(plan(load_session(session), params), self.out / "logs" / phase)
        code = supervisor.run()
        self.timings[f"{phase}_s"] = time.monotonic() - t0
        if supervisor.deaths:
            self.node_restarts[phase] = {n: c for n, c in supervisor.restarts.items() if c}
        if code != 0:
            raise RuntimeError(
                f"{phase} failed: {supervisor.stop_reason}, exit codes {supervisor.returncodes}; "
                f"see {self.out / 'logs' / phase}"
            )
        return log

    def _rl_params(self) -> dict[str, Any]:
        """RL parameters actor and learner must share (their sizes come from the model, `model_path`)."""
        params: dict[str, Any] = dict(ABLATIONS[self.cfg.ablation])
        if self.cfg.tiny:
            params.update(
                {
                    "rl.learning_starts": 8,
                    "rl.batch_size": 8,
                    "rl.hidden": [32, 32],
                    "rl.weights_every": 10,
                    "rl.warmup_episodes": 1,
                }
            )
        return params

    def train(self, onnx: Path) -> Path:
        learner_dir, rl = self.out / "learner", self._rl_params()
        overrides = {
            "sim_driver": {
                "driver.mode": self.cfg.train_mode,
                "driver.seed": self.cfg.train_seed,
                "driver.critical_budget_s": 60.0 * self.cfg.rl_minutes,
                "driver.episodes": self.cfg.train_max_episodes,
            },
            "actor": {
                "actor.mode": "train",
                "actor.learner_slack_updates": self.cfg.learner_slack_updates,
                **rl,
            },
            "learner": {"checkpoint_dir": str(learner_dir), **rl},
        }
        return self._run("train", OPERATORS[self.cfg.operator], onnx, overrides)

    def evaluate(self, onnx: Path, policy: str) -> Path:
        actor: dict[str, Any] = {"actor.mode": "base" if policy == "base" else "eval", **self._rl_params()}
        if policy == "rlt":
            actor["weights_file"] = str(self.out / "learner" / "actor_weights.npz")
        overrides = {
            "sim_driver": {
                "driver.mode": "critical",
                "driver.seed": self.cfg.eval_seed,
                "driver.episodes": self.cfg.eval_episodes,
            },
            "actor": actor,
        }
        return self._run(f"eval_{policy}", "sim_eval", onnx, overrides)

    def teleop_episodes(self) -> list[dict[str, Any]]:
        """The scripted teleoperator (demo settings) on the evaluation seeds, as episode-log records."""
        from rlt.sim.config import ExpertConfig, SimConfig
        from rlt.sim.env import PegInsertEnv
        from rlt.sim.expert import ScriptedTeleop, rollout

        episodes = []
        sim_cfg = SimConfig(preset=self.cfg.preset, cameras=())
        with PegInsertEnv(sim_cfg) as env:
            teleop = ScriptedTeleop(env, ExpertConfig())
            for k in range(self.cfg.eval_episodes):
                trajectory = list(rollout(env, teleop, self.cfg.eval_seed + k, "critical"))
                episodes.append({"critical_steps": len(trajectory), "control_hz": sim_cfg.control_hz,
                                 "success": bool(trajectory[-1].result.info["success"])})
        return episodes

    def run(self) -> dict[str, Any]:
        """All phases, in a ROS domain of their own unless ROS_DOMAIN_ID is set (another session, a test or a
        benchmark on this machine on the default domain 0 would otherwise feed these nodes its messages)."""
        if os.environ.get("ROS_DOMAIN_ID"):
            return self._run_all()
        with private_domain() as domain:
            print(f"[session] ROS_DOMAIN_ID={domain} (private to this session)", flush=True)
            return self._run_all()

    def _run_all(self) -> dict[str, Any]:
        from rlt.report import write_report
        from rlt.sim.episode_log import read_episode_log

        t0 = time.monotonic()
        kept = keep_previous_run(self.out)
        if kept is not None:
            print(f"[session] the previous run in {self.out} was moved to {kept}", flush=True)
        self.out.mkdir(parents=True, exist_ok=True)
        onnx = self.build_artifacts()
        train_log = self.train(onnx)
        if not any(e["critical_steps"] for e in read_episode_log(train_log)):
            raise RuntimeError(
                f"no training episode reached the critical phase ({train_log}): the base VLA does not "
                "approach the socket; check it with `rlt diagnose vla` or use --train-mode critical"
            )
        base_log = self.evaluate(onnx, "base")
        rlt_log = self.evaluate(onnx, "rlt")
        extra = {
            "wall_time_s": round(time.monotonic() - t0, 1),
            **{k: round(v, 1) for k, v in self.timings.items()},
            "node_restarts": self.node_restarts,
            "config": self.cfg.to_dict(),
        }
        learner_stats = self.out / "learner" / "stats.json"
        if learner_stats.is_file():
            stats = json.loads(learner_stats.read_text())
            extra["learner_updates"] = stats["updates"]
            extra["learner_updates_per_s"] = round(stats["updates_per_s"], 1)
        summary = write_report(
            self.out / "report",
            read_episode_log(train_log),
            read_episode_log(base_log),
            read_episode_log(rlt_log),
            self.teleop_episodes(),
            extra,
        )
        print(
            json.dumps(
                {
                    k: summary[k]
                    for k in (
                        "base",
                        "rlt",
                        "throughput_ratio",
                        "teleop_median_steps",
                        "rl_data_minutes",
                        "wall_time_s",
                    )
                },
                indent=2,
                default=float,
            )
        )
        print(f"[session] report: {self.out / 'report' / 'summary.md'}")
        return summary
