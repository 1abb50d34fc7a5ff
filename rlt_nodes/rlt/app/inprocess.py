"""The sim RLT session in ONE process, without ROS: for sweeps and for the oracle-state diagnostic.

This module owns `run_inprocess`: the same cores the session's nodes wrap (`SimDriver`, `VlaServer`, `ActorCore`,
`Learner`, and in training the scripted operator's `ScriptedHuman` + `Teleop`), wired by direct calls in lockstep —
train for a budget of critical-phase sim time, then evaluate the base VLA and RLT on one fixed list of seeds
(common random numbers) — with the parameters of `launch/config/sim.yaml` (its `/**` rl block, and its sim_human and
teleop blocks), so a result here is the session's settings measured 3-5x faster.
The learner runs exactly UTD x the transitions received before the next chunk is chosen (the ROS session lets it
lag by up to `actor.learner_slack_updates` of `launch/config/sim.yaml`).

`state="oracle"` replaces z_rl by the simulator's true tip-to-hole offset (x, y over 2 mm, yaw over 0.02 rad): an
upper bound that separates what the RL stage can do from what the RL token lets it see. It must not import rclpy.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from rlt.app.launch import LAUNCH_DIR
from rlt.app.session import OPERATORS, SessionConfig
from rlt.config import Config
from rlt.execution import Chunking
from rlt.rl.config import RLConfig, resolve
from rlt.seeds import RANGES, TRAINING
from rlt.types import Event, PolicyWeights, Transition

if TYPE_CHECKING:
    from rlt.rl.actor_core import ActorCore
    from rlt.rl.learner import Learner
    from rlt.sim.config import SimConfig
    from rlt.sim.driver import DriverOutput

SIM_PARAMS = LAUNCH_DIR / "config" / "sim.yaml"
STATES: tuple[str, ...] = ("token", "oracle")
ORACLE_DIM = 3  # (x, y, yaw) tip-to-hole offset
ORACLE_SCALE = np.array([0.002, 0.002, 0.02], np.float32)  # m, m, rad -> order-1 inputs near the hole


@dataclasses.dataclass(frozen=True)
class InProcessConfig(Config):
    """What `rlt bench session` runs."""

    model_path: str = "artifacts/vla.onnx"  # the exported VLA + RL token (rlt session builds it)
    fake_vla: bool = False  # serve rlt.models.onnx_vla.FakeVla instead (tests: plumbing, not results)
    params_file: str = str(SIM_PARAMS)  # the session's parameters (its /** rl block)
    state: str = "token"  # token: z_rl from the model; oracle: the true tip-to-hole offset
    rl_minutes: float = SessionConfig.rl_minutes  # critical-phase sim time of online RL data, as `rlt session`
    eval_episodes: int = SessionConfig.eval_episodes  # per policy, on the same seeds, as `rlt session`
    # evaluation seeds, a range of rlt.seeds: "tuning" (settings are chosen here) or "evaluation" (reserved for final
    # figures: a setting chosen on it is no longer evaluated on unseen seeds)
    seeds: str = "tuning"
    rl_overrides: tuple[str, ...] = ()  # "name=value" applied to the RLConfig after the params file (YAML values)
    # as rlt.app.session.SessionConfig.operator: "noisy" or "privileged" = the params file's scripted human (its
    # sim_human and teleop blocks, with that perception) intervenes in training through the same Joy -> teleop
    # mapping as the sim_human session; "none" = autonomous
    operator: str = "noisy"
    human_overrides: tuple[str, ...] = ()  # "name=value" applied to its ScriptedHumanConfig (YAML values)
    threads: int = 0  # torch and ONNX Runtime intra-op threads; 0 = their defaults, 1 per run in a parallel sweep

    def validate(self) -> None:
        self.require_choice("state", STATES)
        self.require_choice("operator", tuple(OPERATORS))
        self.require_choice("seeds", ("tuning", "evaluation"))
        self.require_positive("rl_minutes", "eval_episodes")
        try:
            RANGES[self.seeds].check(RANGES[self.seeds].first, self.eval_episodes)
        except ValueError as err:
            self.fail("eval_episodes", str(err))
        for name in ("rl_overrides", "human_overrides"):
            for item in getattr(self, name):
                if "=" not in item:
                    self.fail(name, f"{item!r} is not name=value")


def _node_params(params: dict[str, Any], node: str) -> dict[str, Any]:
    """`node`'s ros__parameters in a loaded params file ({} when absent)."""
    return params.get(node, {}).get("ros__parameters", {})


def _block(params: dict[str, Any], node: str, key: str, overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    """The `key` block of `node`'s parameters in a loaded params file, with "name=value" overrides (YAML values)."""
    block = dict(_node_params(params, node).get(key, {}))
    block.update({k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in overrides)})
    return block


def session_rl_config(params_file: str | Path, token_dim: int, overrides: tuple[str, ...] = ()) -> RLConfig:
    """The RLConfig the sim session's actor and learner get from `params_file` (its /** rl block: a preset and
    fields), plus overrides."""
    rl = _block(yaml.safe_load(Path(params_file).read_text()), "/**", "rl", overrides)
    return resolve({**rl, "token_dim": token_dim}, source=str(params_file))


class _Operator:
    """The sim_human session's scripted human and teleop node, called in lockstep: driver outputs in, the human
    chunk and hand-back handed to the actor as the actor node does."""

    def __init__(self, cfg: InProcessConfig, sim: SimConfig, chunking: Chunking) -> None:
        from rlt.sim.human import ScriptedHuman, ScriptedHumanConfig
        from rlt.teleop.teleop import Teleop, TeleopConfig, load_mapping

        params = yaml.safe_load(Path(cfg.params_file).read_text())
        mapping = load_mapping(_node_params(params, "sim_human").get("mapping", "xbox"))
        perception = OPERATORS[cfg.operator][1].get("human.perception", "noisy")
        human = ScriptedHumanConfig.from_dict(
            {"perception": perception, **_block(params, "sim_human", "human", cfg.human_overrides)},
            source=cfg.params_file)
        teleop = TeleopConfig.from_dict(_block(params, "teleop", "teleop"), source=cfg.params_file)
        self.human, self.teleop = ScriptedHuman(sim, human, mapping), Teleop(mapping, teleop, chunking)

    def __call__(self, out: DriverOutput, actor: ActorCore) -> None:
        for event in out.events:
            self.human.on_event(event)
        tele = self.teleop.on_joy(*self.human.on_state(out.sim_state), out.stamp_ns)
        if tele.chunk is not None:
            actor.set_human_chunk(tele.chunk, out.stamp_ns)
        for event in tele.events:
            if event.event is Event.INTERVENE_END:
                actor.end_intervention(event.stamp_ns)

    def close(self) -> None:
        self.human.close()


def run_inprocess(cfg: InProcessConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train, then evaluate base and RLT; returns {"train": episodes, "base": {...}, "rlt": {...}, ratio, wall_s}."""
    from rlt.app.report import evaluation_stats, paired_bootstrap, throughput_ratio
    from rlt.rl.actor_core import ActorConfig, ActorCore
    from rlt.rl.learner import Learner
    from rlt.serving import VlaServer, VlaServerConfig
    from rlt.sim.config import SimConfig
    from rlt.sim.driver import DriverConfig, SimDriver
    from rlt.sim.env import PegInsertEnv
    from rlt.sync import SyncedObservation

    began = time.monotonic()
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    server = VlaServer(VlaServerConfig(model_path=cfg.model_path, fake=cfg.fake_vla, providers="cpu",
                                       threads=cfg.threads))
    token_dim = server.model.token_dim if cfg.state == "token" else ORACLE_DIM
    rl = session_rl_config(cfg.params_file, token_dim, cfg.rl_overrides)
    env = PegInsertEnv(SimConfig(image_size=server.model.image_size, cameras=tuple(server.model.cameras)))
    learner = Learner(rl)

    def episodes(mode: str, seed: int, count: int = 0, budget_s: float = 0.0) -> list[dict]:
        driver = SimDriver(env, DriverConfig(mode="critical", seed=seed, episodes=count, critical_budget_s=budget_s),
                           Chunking.of(rl))
        actor = ActorCore(rl, ActorConfig(mode=mode))
        if mode == "eval":
            actor.load_weights(_snapshot(learner, 1))
        operator = _Operator(cfg, env.cfg, Chunking.of(rl)) if cfg.operator != "none" and mode == "train" else None
        summaries: list[dict] = []
        out = driver.begin_episode()
        while True:
            if operator is not None:
                operator(out, actor)
            if out.request is not None:
                answer = server.answer(SyncedObservation(out.request, env.render_cameras(), out.proprio))
                if cfg.state == "oracle":
                    truth = np.r_[env.tip_offset()[:2], env.yaw_error()].astype(np.float32)
                    answer = dataclasses.replace(answer, rl_token=truth / ORACLE_SCALE)
                step = actor.on_vla_output(answer)
                if mode == "train":
                    _learn(learner, actor, step.transitions, rl.weights_every)
                if step.chunk is not None:
                    driver.submit_chunk(step.chunk)
            if out.summary is not None:
                summaries.append(out.summary)
                if mode == "train" and len(summaries) % 50 == 0:
                    recent = np.mean([s["success"] for s in summaries[-50:]])
                    log(f"[bench session] train: {len(summaries)} episodes, "
                        f"{driver.critical_steps_total / env.cfg.control_hz / 60:.1f} min of data, success of the "
                        f"last 50 {recent:.2f}, {learner.updates} updates")
            if driver.episode_over:
                if driver.finished:
                    if operator is not None:
                        operator.close()
                    return summaries
                out = driver.begin_episode()
            else:
                out = driver.step()

    seeds = RANGES[cfg.seeds]
    with env:
        train = episodes("train", TRAINING.first, budget_s=60.0 * cfg.rl_minutes)
        trained_s = time.monotonic() - began
        base_log = episodes("base", seeds.first, cfg.eval_episodes)
        rlt_log = episodes("eval", seeds.first, cfg.eval_episodes)
    base, rlt = evaluation_stats(base_log), evaluation_stats(rlt_log)
    return {"train": train, "base": base, "rlt": rlt, "throughput_ratio": throughput_ratio(rlt, base),
            "ci95": paired_bootstrap(base_log, rlt_log), "base_episodes": base_log, "rlt_episodes": rlt_log,
            "learner_updates": learner.updates, "transitions": learner.buffer.added, "train_wall_s": trained_s,
            "wall_s": time.monotonic() - began, "rl": rl.to_dict(), "state": cfg.state, "operator": cfg.operator,
            "seeds": seeds.describe(), "model_path": cfg.model_path}


def _learn(learner: Learner, actor: ActorCore, transitions: list[Transition], weights_every: int) -> None:
    """Store, update up to the UTD budget, and hand the actor a snapshot when a `weights_every` mark was crossed."""
    for t in transitions:
        learner.add(t)
    before = learner.updates
    due = learner.update_budget() - before
    if due <= 0:
        return
    learner.train(due, stats=False)
    if learner.updates // weights_every > before // weights_every:
        actor.load_weights(_snapshot(learner, learner.updates // weights_every))


def _snapshot(learner: Learner, version: int) -> PolicyWeights:
    """The learner's current actor as the versioned weights the actor node would receive."""
    return PolicyWeights(version, learner.actor_state(), learner.updates, learner.architecture())


def format_report(result: dict[str, Any]) -> str:
    """The figures of `run_inprocess`."""
    from rlt.app.report import intervention_stats

    lines = [f"in-process sim session, state={result['state']}, operator={result['operator']}, evaluated on the "
             f"{result['seeds']}: {len(result['train'])} training episodes, "
             f"{result['learner_updates']} learner updates, train {result['train_wall_s']:.0f} s, "
             f"total {result['wall_s']:.0f} s"]
    for name in ("base", "rlt"):
        s = result[name]
        lines.append(f"  {name:<5} success {s['success_rate']:.3f}  median {s['median_steps_success']:.0f} steps  "
                     f"{s['throughput_per_10min']:.1f} successes / 10 min")
    human = intervention_stats(result["train"])
    if human["episodes_with_human"]:
        lines.append(f"  training: the human drove {human['human_step_share']:.1%} of the critical steps, in "
                     f"{human['episodes_with_human']} of {len(result['train'])} episodes")
    lo, hi = result["ci95"]["throughput_ratio"]
    lines.append(f"  throughput ratio RLT / base: {result['throughput_ratio']:.2f}x (95 % CI {lo:.2f}-{hi:.2f}, "
                 "bootstrap paired by seed)")
    return "\n".join(lines)
