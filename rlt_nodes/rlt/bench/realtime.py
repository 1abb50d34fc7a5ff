"""`rlt bench realtime`: the robot session, unchanged, against the simulated arm at wall-clock speed.

This module owns the rehearsal benchmark. Three launches of the `rehearsal` session (launch/sessions.yaml: the robot
session's vla, actor, chunk_executor, teleop and learner nodes, with `sim_arm` in place of the arm and cameras):
1. online RLT for `minutes` of wall clock, the learner at full speed beside the VLA (no lockstep: nothing waits for
   anything, as on a robot); the judge starts, hands off and ends episodes on the training seeds;
2. and 3. the base VLA, then the trained actor, each for `episodes` judged episodes on the same seeds.
Every node writes its newest /diagnostics report to a folder (`diagnostics.dump_dir`) with whole-run latency windows;
the figures come from those reports: the share of control steps that had a fresh chunk, each stage's p50 / p99
(observation -> VLA output -> chunk sent -> accepted -> first row commanded), watchdog holds, stalls, the acting
weights' lag, learner updates/s and replay size. The throughput ratio RLT / base comes with its 95 % interval
(bootstrap paired by seed, `rlt.app.report`), beside the lockstep session's from the README's summary.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

from rlt.app.launch import CLEAN_EXITS, LAUNCH_DIR, Supervisor, load_session, plan, private_domain
from rlt.app.report import evaluation_stats, paired_bootstrap, throughput_ratio
from rlt.app.session import keep_previous_run, session_params
from rlt.config import Config
from rlt.diagnostics import parse_snapshot
from rlt.robot.executor import STAGES
from rlt.seeds import EVALUATION, TRAINING, TUNING
from rlt.sim.episode_log import read_episode_log

SESSION = "rehearsal"
LOCKSTEP_SUMMARY = LAUNCH_DIR.parent / "docs" / "headline_summary.json"  # the README table's session summary
WHOLE_RUN = 1_000_000  # latency samples kept per stage: every chunk of the run, for an exact p99
SAVES_AT_STOP = {"learner", "recorder"}  # nodes that write their results while stopping: a kill loses them


@dataclasses.dataclass(frozen=True)
class RealtimeConfig(Config):
    """Options of `rlt bench realtime`."""

    minutes: float = 10.0  # wall-clock minutes of online RL (15 minutes of data take 15 minutes, as on a robot)
    episodes: int = 50  # judged evaluation episodes per policy (base VLA, then RLT)
    seeds: str = "evaluation"  # evaluation seed range of rlt.seeds: "evaluation" for figures, "tuning" to tune
    model_path: str = ""  # VLA + RL-token ONNX; "" = build or reuse the sim session's (artifacts/vla.onnx)
    out_dir: str = "runs/realtime"  # logs, episode logs, diagnostics reports, learner checkpoints, summary.json
    record: bool = False  # also run the session's bag recorder (off: 10 minutes of camera images are ~1 GB)
    params_file: str = ""  # the session's parameters, one file; "" = robot.yaml with rehearsal.yaml over it
    rl: tuple[str, ...] = ()  # "FIELD=VALUE" over the params file's rl block (actor and learner), e.g. "sigma=0.05"

    def validate(self) -> None:
        self.require_positive("minutes", "episodes")
        self.require_choice("seeds", ("evaluation", "tuning"))
        seeds = EVALUATION if self.seeds == "evaluation" else TUNING
        try:
            seeds.check(seeds.first, self.episodes)
        except ValueError as err:
            self.fail("episodes", str(err))


def _rl_values(items: tuple[str, ...]) -> dict[str, Any]:
    """"FIELD=VALUE" items -> {"rl.FIELD": value}, checked against RLConfig (an unknown name lists close ones)."""
    from rlt import overrides

    return {f"rl.{o.field}": o.value for o in overrides.parse([f"rl.{i}" for i in items],
                                                                {"rl": "rlt.rl.config:RLConfig"})}


class Rehearsal:
    """Runs the three phases; each returns what the report needs."""

    def __init__(self, cfg: RealtimeConfig) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out_dir).resolve()
        self.timings: dict[str, float] = {}
        self.forced_stops: dict[str, list[str]] = {}  # phase -> nodes that needed SIGKILL after the judge was done

    def _launch(self, phase: str, model: Path, overrides: dict[str, dict[str, Any]], nodes: set[str]) -> Path:
        """One launch of the rehearsal session with `nodes` only; returns its diagnostics folder."""
        dumps = self.out / "diagnostics" / phase
        shared = {"model_path": str(model), "diagnostics.dump_dir": str(dumps), "diagnostics.window": WHOLE_RUN,
                  **_rl_values(self.cfg.rl)}
        params = session_params({"/**": shared, **overrides}, self.out / f"{phase}_params.yaml", SESSION,
                                Path(self.cfg.params_file) if self.cfg.params_file else None)
        launches = [launch for launch in plan(load_session(SESSION), params) if launch.node.name in nodes]
        print(f"[realtime] {phase}: {', '.join(sorted(nodes))} (logs: {self.out / 'logs' / phase})", flush=True)
        t0 = time.monotonic()
        supervisor = Supervisor(launches, self.out / "logs" / phase)
        code = supervisor.run()
        self.timings[f"{phase}_s"] = round(time.monotonic() - t0, 1)
        if code != 0 and only_wedged_at_stop(supervisor):
            self.forced_stops[phase] = supervisor.killed
            print(f"[realtime] warning: {phase}: {', '.join(supervisor.killed)} ignored SIGINT and SIGTERM after the "
                  f"phase ended and was killed; its stack is in its log in {self.out / 'logs' / phase}", flush=True)
        elif code != 0:
            raise RuntimeError(f"{phase} failed: {supervisor.stop_reason}, exit codes {supervisor.returncodes}; "
                               f"see {self.out / 'logs' / phase}")
        return dumps

    def _arm(self, phase: str, seed: int, **judge: Any) -> dict[str, Any]:
        log = self.out / f"{phase}_episodes.jsonl"
        log.unlink(missing_ok=True)
        return {"episode_log": str(log), "arm.seed": seed, **{f"judge.{k}": v for k, v in judge.items()}}

    def _nodes(self, *extra: str) -> set[str]:
        names = {"sim_arm", "vla", "actor", "chunk_executor", "teleop", *extra}
        return names | ({"recorder"} if self.cfg.record else set())

    def train(self, model: Path) -> dict[str, Any]:
        overrides = {
            "sim_arm": self._arm("train", TRAINING.first, budget_s=60.0 * self.cfg.minutes),
            "actor": {"actor.mode": "train"},
            "learner": {"checkpoint_dir": str(self.out / "learner")},
            "recorder": {"recorder.out": str(self.out / "bags" / "train")},
        }
        dumps = self._launch("train", model, overrides, self._nodes("learner"))
        stats = self.out / "learner" / "stats.json"  # the learner's whole run: updates over its wall time
        return {"episodes": read_episode_log(self.out / "train_episodes.jsonl"), "diagnostics": read_reports(dumps),
                "learner": json.loads(stats.read_text()) if stats.is_file() else {}}

    def evaluate(self, model: Path, policy: str) -> dict[str, Any]:
        seeds = EVALUATION if self.cfg.seeds == "evaluation" else TUNING
        actor: dict[str, Any] = {"actor.mode": "base" if policy == "base" else "eval"}
        if policy != "base":
            actor["weights_file"] = str(self.out / "learner" / "actor_weights.npz")
        overrides = {"sim_arm": self._arm(f"eval_{policy}", seeds.first, episodes=self.cfg.episodes),
                     "actor": actor, "recorder": {"recorder.out": str(self.out / "bags" / f"eval_{policy}")}}
        dumps = self._launch(f"eval_{policy}", model, overrides, self._nodes())
        return {"episodes": read_episode_log(self.out / f"eval_{policy}_episodes.jsonl"),
                "diagnostics": read_reports(dumps)}

    def model(self) -> Path:
        if self.cfg.model_path:
            path = Path(self.cfg.model_path)
            if not path.is_file():
                raise FileNotFoundError(f"--model {path}: no such file (build one with `rlt session`)")
            return path.resolve()
        from rlt.app.session import SessionConfig, SimSession

        return SimSession(SessionConfig()).build_artifacts()

    def run(self) -> dict[str, Any]:
        """All phases in a ROS domain of their own (unless ROS_DOMAIN_ID is set); writes and returns the summary."""
        if os.environ.get("ROS_DOMAIN_ID"):
            return self._run_all()
        with private_domain():
            return self._run_all()

    def _run_all(self) -> dict[str, Any]:
        t0 = time.monotonic()
        kept = keep_previous_run(self.out)  # a finished run's learner checkpoint would be resumed, not retrained
        if kept is not None:
            print(f"[realtime] the previous run in {self.out} was moved to {kept}", flush=True)
        self.out.mkdir(parents=True, exist_ok=True)
        model = self.model()
        train = self.train(model)
        base, rlt = self.evaluate(model, "base"), self.evaluate(model, "rlt")
        summary = summarize(train, base, rlt)
        summary |= {"config": self.cfg.to_dict(), "model": str(model), "wall_s": round(time.monotonic() - t0, 1),
                    **self.timings, "cpu_count": os.cpu_count(), "forced_stops": self.forced_stops}
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
        return summary


def only_wedged_at_stop(supervisor: Supervisor) -> bool:
    """True when a phase's only failure is a node with nothing left to save that hung in its shutdown after the
    judge ended the phase (every episode logged): the run is kept, with a warning, not thrown away."""
    killed = set(supervisor.killed)
    others_clean = all(c in CLEAN_EXITS for n, c in supervisor.returncodes.items() if n not in killed)
    ended = supervisor.stop_reason == "sim_arm exited with 0"
    return ended and bool(killed) and not killed & SAVES_AT_STOP and others_clean


def read_reports(folder: Path) -> dict[str, dict[str, float]]:
    """node name -> the numbers of its last /diagnostics report in `folder` ({} for a node that wrote none)."""
    return {path.stem: parse_snapshot(json.loads(path.read_text())["values"]) for path in sorted(folder.glob("*.json"))}


def timing(reports: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The executor's control-step and stage figures, the VLA's forward pass, the learner's and the actor's."""
    ex = reports.get("chunk_executor", {})
    done = ex.get("steps_executed", 0) + ex.get("steps_missed", 0)
    out: dict[str, Any] = {
        "control_steps": int(done), "steps_missed": int(ex.get("steps_missed", 0)),
        "fresh_chunk_share": ex.get("steps_executed", 0) / done if done else float("nan"),
        "holds": int(ex.get("holds", 0)), "stalls": int(ex.get("stalls", 0)),
        "chunks_refused": int(ex.get("chunks_refused", 0)),
        "stages_ms": {s: [ex.get(f"{s}_p50_ms", float("nan")), ex.get(f"{s}_p99_ms", float("nan")),
                          int(ex.get(f"{s}_n", 0))] for s in STAGES},
    }
    vla = reports.get("vla", {})
    out["vla_forward_ms"] = [vla.get("forward_p50_ms", float("nan")), vla.get("forward_p99_ms", float("nan"))]
    learner, actor = reports.get("learner", {}), reports.get("actor", {})
    for key in ("updates", "updates_per_s", "replay_size"):
        if key in learner:
            out[f"learner_{key}"] = learner[key]
    for key in ("weights_version", "weights_age_s", "learner_behind"):
        if key in actor:
            out[f"actor_{key}"] = actor[key]
    if "updates" in learner and "weights_learner_step" in actor:  # both reports are at most ~1 s apart
        out["weights_lag_updates"] = learner["updates"] - actor["weights_learner_step"]
    return out


def summarize(train: dict[str, Any], base: dict[str, Any], rlt: dict[str, Any]) -> dict[str, Any]:
    """The benchmark's figures from the three phases' episode logs and diagnostics reports."""
    b, r = evaluation_stats(base["episodes"]), evaluation_stats(rlt["episodes"])
    ci = paired_bootstrap(base["episodes"], rlt["episodes"])
    train_eps = train["episodes"]
    summary: dict[str, Any] = {
        "base": b, "rlt": r, "throughput_ratio": throughput_ratio(r, b),
        "throughput_ratio_ci95": ci["throughput_ratio"],
        "train_episodes": len(train_eps), "learner": train["learner"],
        "rl_data_minutes": sum(e.get("critical_wall_s", 0.0) for e in train_eps) / 60.0,
        "timing": {"train": timing(train["diagnostics"]), "eval_base": timing(base["diagnostics"]),
                   "eval_rlt": timing(rlt["diagnostics"])},
    }
    if LOCKSTEP_SUMMARY.is_file():
        lockstep = json.loads(LOCKSTEP_SUMMARY.read_text())
        summary["lockstep"] = {"throughput_ratio": lockstep.get("throughput_ratio"),
                               "throughput_ratio_ci95": lockstep.get("throughput_ratio_ci95"),
                               "learner_updates_per_s": lockstep.get("learner_updates_per_s"),
                               "rows": {row["label"]: [row["throughput_ratio"], row["throughput_ratio_ci95"]]
                                        for row in lockstep.get("rows", [])}}
    return summary


def format_report(s: dict[str, Any]) -> str:
    """The figures of a summary, as the command prints them."""
    lines = []
    for phase in ("train", "eval_base", "eval_rlt"):
        t = s["timing"][phase]
        lines.append(f"{phase}: fresh chunk on {t['fresh_chunk_share']:.4%} of {t['control_steps']} control steps "
                     f"({t['steps_missed']} missed), {t['holds']} holds, {t['stalls']} stalls, "
                     f"{t['chunks_refused']} chunks refused; VLA forward p50 {t['vla_forward_ms'][0]:.1f} ms, "
                     f"p99 {t['vla_forward_ms'][1]:.1f} ms")
        for stage, (p50, p99, n) in t["stages_ms"].items():
            lines.append(f"    {stage:<26} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   ({n} chunks)")
        if "learner_updates_per_s" in t:
            lines.append(f"    learner: {t['learner_updates']:.0f} updates, {t['learner_updates_per_s']:.1f} updates/s "
                         f"(last report), replay {t.get('learner_replay_size', float('nan')):.0f}; acting weights "
                         f"v{t.get('actor_weights_version', float('nan')):.0f}, "
                         f"{t.get('actor_weights_age_s', float('nan')):.1f} s old, "
                         f"{t.get('weights_lag_updates', float('nan')):.0f} learner updates behind")
    learner = s.get("learner", {})
    lines.append(f"training: {s['train_episodes']} episodes, {s['rl_data_minutes']:.1f} min of critical-phase data; "
                 f"learner {learner.get('updates', 0)} updates, {learner.get('updates_per_s', float('nan')):.1f} "
                 "updates/s over its run")
    for name in ("base", "rlt"):
        st = s[name]
        lines.append(f"  {name:<5} success {st['success_rate']:.3f}  median {st['median_steps_success']:.0f} steps  "
                     f"{st['throughput_per_10min']:.1f} successes / 10 min ({st['episodes']} episodes)")
    lo, hi = s["throughput_ratio_ci95"]
    lines.append(f"  throughput ratio RLT / base, wall clock: {s['throughput_ratio']:.2f}x (95 % CI {lo:.2f}-{hi:.2f}, "
                 "bootstrap paired by seed)")
    if "lockstep" in s:
        for label, (ratio, (lo, hi)) in s["lockstep"]["rows"].items():
            if label.startswith("RLT"):
                lines.append(f"  lockstep session (docs/headline_summary.json), {label}: {ratio:.2f}x "
                             f"(95 % CI {lo:.2f}-{hi:.2f})")
    for phase, nodes in s.get("forced_stops", {}).items():
        lines.append(f"  warning: {phase}: {', '.join(nodes)} killed at the stop (its log has the stack)")
    return "\n".join(lines)


def readme_table(s: dict[str, Any]) -> str:
    """The README's table of a summary: per phase the fresh-chunk share and the latencies, then the ratio."""
    phases = {"train": f"online RL ({s['config']['minutes']:g} min)", "eval_base": "base VLA", "eval_rlt": "RLT"}
    rows = ["| | " + " | ".join(phases.values()) + " |", "|---|" + "---|" * len(phases)]

    def row(label: str, cell: Any) -> None:
        rows.append(f"| {label} | " + " | ".join(cell(s["timing"][p]) for p in phases) + " |")

    row("control steps with a fresh chunk", lambda t: f"{t['fresh_chunk_share']:.2%} ({t['steps_missed']} of "
        f"{t['control_steps']} missed)")
    row("observation -> first row commanded, p50 / p99", lambda t: "{:.1f} / {:.1f} ms".format(
        *t["stages_ms"]["obs_to_first_row"][:2]))
    row("VLA forward pass (CPU), p50 / p99", lambda t: "{:.1f} / {:.1f} ms".format(*t["vla_forward_ms"]))
    b, r = s["base"], s["rlt"]
    rows.append(f"| successes / 10 min (success rate) | learner {s['learner'].get('updates_per_s', float('nan')):.0f} "
                f"updates/s | {b['throughput_per_10min']:.1f} ({b['success_rate']:.0%}) | "
                f"{r['throughput_per_10min']:.1f} ({r['success_rate']:.0%}) |")
    lo, hi = s["throughput_ratio_ci95"]
    return "\n".join(rows) + (f"\n\nRLT / base at wall-clock speed: **{s['throughput_ratio']:.2f}x** (95 % CI {lo:.2f}-"
                              f"{hi:.2f}, paired by seed, {b['episodes']} {s['config']['seeds']} seeds).")
