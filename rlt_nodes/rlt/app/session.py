"""The main job: build what is missing (demos, VLA, RL token, ONNX), train RLT online in a launched ROS 2 sim
session, evaluate the base VLA and RLT on one fixed list of seeds, and write the report.

Every phase is a launch of `launch/sessions.yaml` nodes (each its own process) with a params file derived from
`launch/config/sim.yaml`; artifacts are cached in `artifacts_dir` and reused when present. Pure Python: the ROS
side runs in the node processes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rlt.app.launch import Supervisor, deep_merge, load_session, plan, private_domain, write_params
from rlt.artifacts import digest
from rlt.config import Config
from rlt.seeds import EVALUATION, TRAINING

# ablation -> RL parameters it changes (actor and learner alike)
ABLATIONS: dict[str, dict[str, Any]] = {
    "none": {},
    "beta0": {"rl.beta": 0.0},  # no BC regularizer toward the reference chunk
    "no_passthrough": {"rl.use_reference": False},  # the actor does not see the reference chunk
    "no_dropout": {"rl.ref_dropout": 0.0},  # no reference-action dropout
    "no_token": {},  # no RL token: z_rl := features of a self-supervised CNN on the raw images (vla_cnn.onnx)
}
# who may take over in training -> (the session it launches, its scripted human's parameters). Evaluation is
# autonomous. "privileged" sees the simulator's true pose: an upper bound, never the default
OPERATORS: dict[str, tuple[str, dict[str, Any]]] = {
    "noisy": ("sim_human", {"human.perception": "noisy"}),
    "privileged": ("sim_human", {"human.perception": "privileged"}),
    "none": ("sim", {}),
}
# the RL state read from the RL token: "goal" = its leading goal entries (trained to predict the displacement to
# the inserted pose, rlt.models.rl_token), "plain" = the paper's reconstruction-only token, the whole z_rl
TOKENS: tuple[str, ...] = ("goal", "plain")
# further RLT runs a session can add (`variants`), each the default run with these SessionConfig fields changed;
# they share its artifacts, training seeds and the base VLA's evaluation
VARIANTS: dict[str, dict[str, str]] = {
    "plain_token": {"token": "plain"},
    "goal_token": {"token": "goal"},
    "no_operator": {"operator": "none"},
    "noisy_operator": {"operator": "noisy"},
    "privileged_operator": {"operator": "privileged"},
}
# ablations whose policy reads the image-feature ONNX (artifacts/vla_cnn.onnx) instead of the RL token's
IMAGE_FEATURE_ABLATIONS: frozenset[str] = frozenset({"no_token"})


@dataclasses.dataclass(frozen=True)
class SessionConfig(Config):
    """Embedded defaults of `rlt session` (the README's first command)."""

    out_dir: str = "runs/sim_session"  # report, logs, learner checkpoints of this run
    artifacts_dir: str = "artifacts"  # cached demos, VLA, token and ONNX model (built when missing or stale)
    preset: str = "main"  # sim difficulty preset
    demo_scale: float = 1.0  # multiplies the episode counts of the demo recipe and of the base-VLA rollouts
    build_seed: int = 0  # seed of the VLA's and the token's training: another seed is an independent build
    rl_minutes: float = 15.0  # critical-phase sim time of online RL data
    # training episodes: "critical" (start at the hand-off state: all sim time goes to RL data) or "full" (the base
    # VLA flies the approach, the geometric trigger hands off to RL; its VLA is trained with the approach demos
    # too and cached apart, under artifacts_dir/with_approach)
    train_mode: str = "critical"
    train_max_episodes: int = 3000  # safety cap: stop training even if the RL-data budget was not reached
    eval_episodes: int = 150  # per policy, on the first seeds of rlt.seeds.EVALUATION (common random numbers)
    ablation: str = "none"  # one of ABLATIONS: the paper's ablations, run the same way as the full method
    token: str = "goal"  # RL state, one of TOKENS: the token's goal entries, or the plain token (the whole z_rl)
    # who may take over in training, one of OPERATORS: "noisy" (the sim's scripted operator, session sim_human,
    # seeing the hole with a person's perception errors, takes over where the peg stalls on the rim), "privileged"
    # (the same operator on the true pose: an upper bound) or "none" (autonomous). Evaluation is autonomous
    operator: str = "noisy"
    # further RLT runs on the same artifacts, names from VARIANTS: by default the rows of the README's table (the
    # paper's token, and the goal entries trained with no operator and with the privileged one); () = one run
    variants: tuple[str, ...] = ("plain_token", "no_operator", "privileged_operator")
    tiny: bool = False  # seconds-scale models and budgets (CI): checks the plumbing, not the claims

    def validate(self) -> None:
        self.require_positive("demo_scale", "rl_minutes", "eval_episodes", "train_max_episodes")
        self.require_range("build_seed", 0, 2**31 - 1)
        self.require_choice("train_mode", ("full", "critical"))
        self.require_choice("ablation", tuple(ABLATIONS))
        self.require_choice("token", TOKENS)
        self.require_choice("operator", OPERATORS)
        for name in self.variants:
            if name not in VARIANTS:
                self.fail("variants", f"unknown variant {name!r}; expected names from {', '.join(VARIANTS)}")
        try:
            EVALUATION.check(EVALUATION.first, self.eval_episodes)
            TRAINING.check(TRAINING.first, self.train_max_episodes)
        except ValueError as err:
            self.fail("eval_episodes", str(err))


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


def session_params(overrides: Mapping[str, Mapping[str, Any]], path: Path, session: str = "sim",
                   params_file: Path | None = None) -> Path:
    """The session's parameters (its own file or `params_file`, over its base files) with per-node overrides
    {'node': {'ns.param': value}} merged in, written to `path` as one file."""
    params = load_session(session).params(params_file)
    for node, values in overrides.items():
        params = deep_merge(params, {node: {"ros__parameters": _nest(values)}})
    return write_params(params, path)


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


@dataclasses.dataclass(frozen=True)
class Run:
    """One RLT run of a session: its name (phase and folder prefix), token and operator."""

    name: str  # "rlt" for the session's own settings, else "rlt_<variant>"
    token: str
    operator: str

    @property
    def label(self) -> str:
        """How reports name it: 'RLT (goal entries, noisy operator)'."""
        state = {"goal": "goal entries", "plain": "plain token"}[self.token]
        who = {"none": "no operator", "noisy": "noisy operator", "privileged": "privileged operator (upper bound)"}
        return f"RLT ({state}, {who[self.operator]})"


class SimSession:
    """Runs the phases of the main job; each returns what the next needs."""

    def __init__(self, cfg: SessionConfig, progress: bool = True) -> None:
        self.cfg, self.progress = cfg, progress
        self.out = Path(cfg.out_dir).resolve()
        self.art = Path(cfg.artifacts_dir).resolve() / ("with_approach" if cfg.train_mode == "full" else "")
        self.timings: dict[str, float] = {}
        self.node_restarts: dict[str, dict[str, int]] = {}  # phase -> node -> respawns (a node died mid-phase)
        self.keys: dict[str, dict[str, Any]] = {}  # artifact -> its key (rlt.artifacts), once built or checked

    @property
    def runs(self) -> list[Run]:
        """The session's own RLT run, then one per variant (a variant equal to it is skipped)."""
        runs = [Run("rlt", self.cfg.token, self.cfg.operator)]
        for name in self.cfg.variants:
            changes = VARIANTS[name]
            run = Run(f"rlt_{name}", changes.get("token", self.cfg.token), changes.get("operator", self.cfg.operator))
            if all((r.token, r.operator) != (run.token, run.operator) for r in runs):
                runs.append(run)
        return runs

    # ------------------------------------------------------------------ artifacts
    def _model_configs(self, token: str) -> tuple[Any, Any, Any]:
        from rlt.models.config import TokenConfig, VlaConfig, VlaTrainConfig

        if not self.cfg.tiny:
            vla, train, tok = VlaConfig(), VlaTrainConfig(), TokenConfig()
        else:
            from rlt.models.testing import tiny_token_config, tiny_train_config, tiny_vla_config

            vla, train, tok = tiny_vla_config(image_size=96, chunk_len=10), tiny_train_config(), tiny_token_config()
        if token == "plain":  # the paper's token: reconstruction only, the whole z_rl is the RL state
            tok = tok.replace(goal_weight=0.0, rl_entries=0)
        return vla, train.replace(seed=self.cfg.build_seed), tok.replace(seed=self.cfg.build_seed)

    def _fresh(self, name: str, path: Path, key: dict[str, Any], resumable: bool = False) -> str:
        """"reuse" when `path` holds the finished artifact `key` describes, "resume" (when `resumable`) for an
        unfinished one of the same key, else "build" after removing what is there (a stale artifact is never
        reused: the reason, naming the fields that differ, is printed)."""
        from rlt.artifacts import stale_reason

        self.keys[name] = key
        reason = stale_reason(path, key)
        finished = path.is_file() or (path / "DONE").is_file()
        if reason is None and finished:
            return "reuse"
        if reason is None and resumable:
            print(f"[session] {name}: resuming the unfinished build in {path}", flush=True)
            return "resume"
        print(f"[session] {name}: building {path} ({reason or 'unfinished'})", flush=True)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        return "build"

    @staticmethod
    def _done(path: Path, key: dict[str, Any]) -> None:
        from rlt.artifacts import write_key

        write_key(path, key)
        if path.is_dir():
            (path / "DONE").touch()

    def build_artifacts(self, token: str | None = None) -> Path:
        """demos -> VLA -> base-VLA rollouts -> RL token -> ONNX for `token` (default: the session's), each reused
        only when its recorded key (rlt.artifacts) equals the one the current configs give; returns the ONNX."""
        from rlt.app.recipe import EXPERT, recipe_parts, record_vla_demos
        from rlt.artifacts import make_key, write_key
        from rlt.models.bc import train_vla
        from rlt.models.export import export_onnx
        from rlt.models.rl_token import train_token
        from rlt.sim.config import SimConfig
        from rlt.sim.env import CAMERA_VIEW

        token = token or self.cfg.token
        vla_cfg, train_cfg, token_cfg = self._model_configs(token)
        build = f"-s{self.cfg.build_seed}" if self.cfg.build_seed else ""
        demos = self.art / "demos" / self.cfg.preset
        vla_dir = self.art / f"vla{build}"
        token_dir = self.art / f"token{'' if token == 'goal' else '_' + token}{build}"
        onnx = self.art / f"vla{'' if token == 'goal' else '_' + token}{build}.onnx"
        t0 = time.monotonic()
        approach = self.cfg.train_mode == "full"
        parts = recipe_parts(approach)
        demos_key = make_key({
            "recipe": [dataclasses.asdict(p) for p in parts],
            "sim": [SimConfig(preset=self.cfg.preset, image_size=vla_cfg.image_size, **p.sim_changes).to_dict()
                    for p in parts],
            "expert": EXPERT.to_dict(), "scale": self.cfg.demo_scale, "camera_view": CAMERA_VIEW,
        })
        if self._fresh("demos", demos, demos_key) == "build":
            record_vla_demos(demos, self.cfg.preset, vla_cfg.image_size, self.cfg.demo_scale, self.progress, approach)
            self._done(demos, demos_key)
        vla_key = make_key({"vla": vla_cfg.to_dict(), "train": train_cfg.to_dict()}, {"demos": demos_key})
        state = self._fresh("vla", vla_dir, vla_key, resumable=True)
        if state != "reuse":
            write_key(vla_dir, vla_key)  # before training: an interrupted run of the same key resumes
            train_vla(demos, vla_dir, vla_cfg, train_cfg, resume=state == "resume", progress=self.progress)
            self._done(vla_dir, vla_key)
        if self.cfg.ablation in IMAGE_FEATURE_ABLATIONS:  # the RL token is not needed: skip it
            onnx = self.build_image_feature_onnx(vla_dir / "vla.pt", demos)
            self.timings["artifacts_s"] = time.monotonic() - t0
            return onnx
        rollouts = self.build_rollouts(vla_dir / "vla.pt", build)
        token_key = make_key({"token": token_cfg.to_dict()},
                             {"vla": vla_key, "demos": demos_key, "rollouts": self.keys["rollouts"]})
        if self._fresh("token", token_dir, token_key) == "build":
            train_token(vla_dir / "vla.pt", demos, token_dir, token_cfg, rollouts=rollouts, progress=self.progress)
            self._done(token_dir, token_key)
        onnx_key = make_key({}, {"vla": vla_key, "token": token_key})
        if self._fresh("onnx", onnx, onnx_key) == "build":
            export_onnx(vla_dir / "vla.pt", token_dir / "token.pt", onnx)
            self._done(onnx, onnx_key)
        self.timings["artifacts_s"] = self.timings.get("artifacts_s", 0.0) + time.monotonic() - t0
        return onnx

    def build_rollouts(self, vla_checkpoint: Path, build: str = "") -> Path:
        """The base VLA's own critical-phase episodes (`rlt.app.recipe.record_vla_rollouts`), cached under
        artifacts/rollouts<build>/<preset> with their key (the RolloutConfig and the VLA's key); recorded under
        rollouts/.partial first, so an interrupted run leaves nothing that looks finished."""
        from rlt.app.recipe import record_vla_rollouts
        from rlt.artifacts import make_key
        from rlt.sim.config import ExpertConfig, RolloutConfig

        out = self.art / f"rollouts{build}" / self.cfg.preset
        cfg = RolloutConfig()
        cfg = cfg.replace(episodes=max(2, round(cfg.episodes * self.cfg.demo_scale)))  # >= 1 train, 1 held out
        key = make_key({"rollouts": cfg.to_dict(), "operator": ExpertConfig().to_dict()},
                       {"vla": self.keys.get("vla", {})})
        if self._fresh("rollouts", out, key) == "reuse":
            return out
        print(f"[session] recording {cfg.episodes} episodes of the base VLA (the RL token's goal data) -> {out}",
              flush=True)
        partial = out.parent / ".partial" / out.name  # same folder name: the bag's file is named after it
        shutil.rmtree(partial, ignore_errors=True)
        record_vla_rollouts(vla_checkpoint, partial, cfg, self.cfg.preset, self.progress)
        partial.rename(out)
        self._done(out, key)
        return out

    def build_image_feature_onnx(self, vla_checkpoint: Path, demos: Path) -> Path:
        """The "no RL token" ablation's model: the image-feature CNN (trained on `demos`) exported with the VLA as
        `artifacts/vla_cnn.onnx`, both cached with their keys."""
        from rlt.artifacts import make_key
        from rlt.models.config import ImageFeaturesConfig
        from rlt.models.export import export_onnx
        from rlt.models.image_features import CHECKPOINT_NAME, train_image_features
        from rlt.models.testing import tiny_image_features_config

        out_dir, onnx = self.art / "image_features", self.art / "vla_cnn.onnx"
        cfg = tiny_image_features_config() if self.cfg.tiny else ImageFeaturesConfig()
        key = make_key({"image_features": cfg.to_dict()}, {"vla": self.keys["vla"], "demos": self.keys["demos"]})
        if self._fresh("image_features", out_dir, key) == "build":
            train_image_features(vla_checkpoint, demos, out_dir, cfg, progress=self.progress)
            self._done(out_dir, key)
        onnx_key = make_key({}, {"vla": self.keys["vla"], "image_features": key})
        if self._fresh("onnx", onnx, onnx_key) == "build":
            export_onnx(vla_checkpoint, out_dir / CHECKPOINT_NAME, onnx)
            self._done(onnx, onnx_key)
        return onnx

    # ------------------------------------------------------------------ launched phases
    def _run(self, phase: str, session: str, onnx: Path, overrides: Mapping[str, Mapping[str, Any]]) -> Path:
        """Launch `session` on the model `onnx` with overrides; the driver ends it; returns the phase's episode log."""
        log = self.out / f"{phase}_episodes.jsonl"
        log.unlink(missing_ok=True)
        shared = {"sim.preset": self.cfg.preset, "model_path": str(onnx)}  # the VLA serves it, RL nodes size on it
        merged = {"/**": shared, **{k: dict(v) for k, v in overrides.items()}}
        merged.setdefault("sim_driver", {})["episode_log"] = str(log)
        params = session_params(merged, self.out / f"{phase}_params.yaml", session)
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

    def _learner_dir(self, run: Run) -> Path:
        return self.out / ("learner" if run.name == "rlt" else f"{run.name}_learner")

    def train(self, onnx: Path, run: Run | None = None) -> Path:
        run = run or self.runs[0]
        rl = self._rl_params()
        session, human = OPERATORS[run.operator]
        overrides = {
            "sim_driver": {
                "driver.mode": self.cfg.train_mode,
                "driver.seed": TRAINING.first,
                "driver.critical_budget_s": 60.0 * self.cfg.rl_minutes,
                "driver.episodes": self.cfg.train_max_episodes,
            },
            "actor": {"actor.mode": "train", **rl},
            "learner": {"checkpoint_dir": str(self._learner_dir(run)), **rl},
            **({"sim_human": human} if human else {}),
        }
        return self._run("train" if run.name == "rlt" else f"train_{run.name}", session, onnx, overrides)

    def evaluate(self, onnx: Path, policy: str, run: Run | None = None) -> Path:
        """Evaluate the base VLA (`policy` "base") or an RLT run's final actor on the evaluation seeds."""
        actor: dict[str, Any] = {"actor.mode": "base" if policy == "base" else "eval", **self._rl_params()}
        if policy != "base":
            actor["weights_file"] = str(self._learner_dir(run or self.runs[0]) / "actor_weights.npz")
        overrides = {
            "sim_driver": {
                "driver.mode": "critical",
                "driver.seed": EVALUATION.first,
                "driver.episodes": self.cfg.eval_episodes,
            },
            "actor": actor,
        }
        return self._run(f"eval_{policy}", "sim_eval", onnx, overrides)

    def teleop_episodes(self) -> list[dict[str, Any]]:
        """The demos' teleoperator (its own settings, `rlt.app.recipe.EXPERT`) on the evaluation seeds, as
        episode-log records."""
        import numpy as np

        from rlt.app.recipe import EXPERT
        from rlt.sim.config import SimConfig
        from rlt.sim.env import PegInsertEnv
        from rlt.sim.expert import ScriptedTeleop, run_episode

        episodes = []
        sim_cfg = SimConfig(preset=self.cfg.preset, cameras=())
        with PegInsertEnv(sim_cfg) as env:
            for k in range(self.cfg.eval_episodes):
                teleop = ScriptedTeleop(env, EXPERT, np.random.default_rng((EXPERT.seed, k)))
                success, steps = run_episode(env, teleop, EVALUATION.seed(k), "critical")
                episodes.append({"seed": EVALUATION.seed(k), "critical_steps": steps,
                                 "control_hz": sim_cfg.control_hz, "success": success})
        return episodes

    def demo_durations(self) -> list[int]:
        """Control steps of the recorded demos' successful episodes (the critical-phase part of the recipe)."""
        from rlt.sim.demos import read_dataset_info

        info = read_dataset_info(self.art / "demos" / self.cfg.preset / "critical")
        return [d for d, ok in zip(info["episode_durations"], info["episode_success"], strict=True) if ok]

    def run(self) -> dict[str, Any]:
        """All phases, in a ROS domain of their own unless ROS_DOMAIN_ID is set (another session, a test or a
        benchmark on this machine on the default domain 0 would otherwise feed these nodes its messages)."""
        if os.environ.get("ROS_DOMAIN_ID"):
            return self._run_all()
        with private_domain() as domain:
            print(f"[session] ROS_DOMAIN_ID={domain} (private to this session)", flush=True)
            return self._run_all()

    def _run_all(self) -> dict[str, Any]:
        from rlt.app.report import RunLogs, write_report
        from rlt.sim.episode_log import read_episode_log

        t0 = time.monotonic()
        kept = keep_previous_run(self.out)
        if kept is not None:
            print(f"[session] the previous run in {self.out} was moved to {kept}", flush=True)
        self.out.mkdir(parents=True, exist_ok=True)
        models = {token: self.build_artifacts(token) for token in dict.fromkeys(r.token for r in self.runs)}
        results = []
        for run in self.runs:
            train_log = read_episode_log(self.train(models[run.token], run))
            if not any(e["critical_steps"] for e in train_log):
                raise RuntimeError(
                    f"no training episode of {run.name} reached the critical phase: the base VLA does not "
                    "approach the socket; check it with `rlt diagnose vla` or use --set session.train_mode=critical"
                )
            evaluated = read_episode_log(self.evaluate(models[run.token], run.name, run))
            results.append(RunLogs(run.name, run.label, train_log, evaluated))
        base = read_episode_log(self.evaluate(models[self.runs[0].token], "base"))
        extra = {
            "wall_time_s": round(time.monotonic() - t0, 1),
            **{k: round(v, 1) for k, v in self.timings.items()},
            "node_restarts": self.node_restarts,
            "evaluation_seeds": EVALUATION.describe(),
            "training_seeds": TRAINING.describe(),
            "artifact_keys": {name: digest(key) for name, key in self.keys.items()},
            "config": self.cfg.to_dict(),
        }
        learner_stats = self.out / "learner" / "stats.json"
        if learner_stats.is_file():
            stats = json.loads(learner_stats.read_text())
            extra["learner_updates"] = stats["updates"]
            extra["learner_updates_per_s"] = round(stats["updates_per_s"], 1)
        summary = write_report(self.out / "report", base, results, self.teleop_episodes(), self.demo_durations(),
                               extra)
        print(json.dumps({k: summary[k] for k in ("base", "rlt", "throughput_ratio", "throughput_ratio_ci95",
                                                   "teleop_median_steps", "rl_data_minutes", "wall_time_s")},
                         indent=2, default=float))
        print(f"[session] report: {self.out / 'report' / 'summary.md'}")
        return summary
