"""Offline debugging from a recording: run an actor checkpoint on the recorded VLA outputs, compare its chunks with
what was executed, and trace the critic's values along each episode.

This module owns `rlt bag eval`. For every chunk boundary of the critical phase in the bag (a `vla/output` whose
request asked for a chunk), it forms the state x = (z_rl, proprio) and the reference ã exactly as the actor node
does, computes the checkpoint actor's mean chunk μ(x, ã), and pairs it with the chunk executed at that boundary
(`action_chunk` with the request's stamp: the VLA's, the actor's of the time or the human's). It reports the RMS
difference (normalized action units, 1 = the action bound) of μ against the executed chunk and against ã, per source
and per episode, and, when the checkpoint holds the critic (a learner checkpoint folder), min(Q1, Q2) of the executed
chunk, of μ and of ã at each boundary. Output: eval.json plus chunk_diff.png and critic_values.png.
Checkpoints: a learner `checkpoint_dir` (LATEST -> learner.pt + meta.json: actor, critic, RLConfig), or an actor
snapshot `.npz` (rlt.rl.weights_file; its folder's LATEST, if any, supplies the config and the critic).
It must not import rclpy or any message package.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from rlt.bags.io import BagReader
from rlt.rl.config import RLConfig
from rlt.rl.units import Units
from rlt.types import Phase, Source, Terminal

LATEST = "LATEST"


@dataclasses.dataclass
class EvalModel:
    """The networks and units of a checkpoint, on CPU, in evaluation mode."""

    cfg: RLConfig
    actor: Any  # rlt.rl.networks.Actor
    critic: Any | None  # rlt.rl.networks.TwinCritic, None for a bare actor snapshot
    units: Units
    source: str  # what was loaded, for the report


def load_model(path: str | Path, proprio_dim: int) -> EvalModel:
    """Actor (and critic when available) from a learner checkpoint folder or an actor snapshot .npz."""
    import torch

    from rlt.rl.networks import Actor, TwinCritic
    from rlt.rl.weights_file import load_weights

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    learner = None
    if (folder / LATEST).is_file():
        ckpt = folder / (folder / LATEST).read_text().strip()
        cfg = RLConfig.from_dict(json.loads((ckpt / "meta.json").read_text())["config"], source=str(ckpt))
        learner = torch.load(ckpt / "learner.pt", map_location="cpu", weights_only=True)
    elif path.is_dir():
        raise FileNotFoundError(f"{path}: no {LATEST}; expected a learner checkpoint_dir or an actor .npz")
    weights = load_weights(path) if path.suffix == ".npz" else None
    if learner is None:  # a bare snapshot: sizes from its architecture, scales from the defaults
        arch = json.loads(weights.architecture)
        cfg = RLConfig(token_dim=arch["state_dim"] - proprio_dim, proprio_dim=proprio_dim, chunk_len=arch["chunk_len"],
                       action_dim=arch["action_dim"], hidden=tuple(arch["hidden"]), use_reference=arch["use_reference"])
    sizes = (cfg.state_dim, cfg.chunk_len, cfg.action_dim, cfg.hidden)
    actor = Actor(*sizes, cfg.use_reference)
    critic = None
    if weights is not None:
        actor.load_arrays(weights.tensors)
        source = f"actor snapshot {path} (version {weights.version}, learner step {weights.learner_step})"
    else:
        actor.load_state_dict(learner["actor"])
        source = f"learner checkpoint {ckpt} ({int(learner['updates'])} updates)"
    if learner is not None:
        critic = TwinCritic(*sizes)
        critic.load_state_dict(learner["critic"])
        if weights is not None:
            source += f"; critic from {ckpt}"
    if cfg.proprio_dim != proprio_dim:
        raise ValueError(f"{path}: RLConfig.proprio_dim={cfg.proprio_dim}, the bag's proprio has {proprio_dim} values")
    return EvalModel(cfg, actor.eval(), critic.eval() if critic is not None else None, Units.from_config(cfg), source)


def find_topic(topics: dict[str, str], suffix: str, msgtype: str) -> str:
    """The one topic named `.../<suffix>` of `msgtype` in a bag (ValueError naming the candidates otherwise)."""
    found = [t for t, m in topics.items() if m == msgtype and (t == suffix or t.endswith("/" + suffix))]
    found = [t for t in found if not t.endswith("/human/" + suffix)] if suffix == "action_chunk" else found
    if len(found) != 1:
        raise ValueError(f"expected one {msgtype} topic ending in {suffix!r} in the bag, found {found or 'none'}")
    return found[0]


def _stamp(header: Any) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def evaluate_bag(
    bag_path: str | Path, checkpoint: str | Path, out_dir: str | Path, episodes: Collection[int] = ()
) -> dict[str, Any]:
    """Run the checkpoint on the bag's critical-phase chunk boundaries (of `episodes`, all if empty); write eval.json
    and the plots; return the summary (see the module docstring)."""
    import torch

    with BagReader(bag_path) as bag:
        vla_topic = find_topic(bag.topics, "vla/output", "rlt_msgs/msg/VlaOutput")
        chunk_topic = find_topic(bag.topics, "action_chunk", "rlt_msgs/msg/ActionChunk")
        outputs, executed = [], {}
        for topic, _, msg in bag.messages([vla_topic, chunk_topic]):
            if topic == chunk_topic:
                data = np.asarray(msg.data, np.float32).reshape(int(msg.chunk_len), len(msg.axis_names))
                executed[_stamp(msg.header)] = (data, Source(int(msg.source)), int(msg.policy_version))
                continue
            req = msg.request
            wanted = not episodes or int(req.episode_id) in episodes
            if wanted and req.phase == Phase.CRITICAL and req.need_chunk and req.terminal == Terminal.NONE:
                ref = np.asarray(msg.reference.data, np.float32).reshape(int(msg.reference.chunk_len), -1)
                outputs.append((int(req.episode_id), int(req.step), _stamp(req.header),
                                np.asarray(msg.rl_token, np.float32), np.asarray(msg.proprio, np.float32), ref))
    if not outputs:
        raise ValueError(f"{bag_path}: no critical-phase chunk requests in {vla_topic}; nothing to evaluate")
    model = load_model(checkpoint, proprio_dim=outputs[0][4].shape[0])
    c, d, units = model.cfg.chunk_len, model.cfg.action_dim, model.units
    records: list[dict[str, Any]] = []
    for episode, step, stamp, z, proprio, ref in outputs:
        if stamp not in executed:
            continue  # the boundary's chunk was not recorded (recording started or stopped mid-episode)
        act, source, version = executed[stamp]
        if act.shape != (c, d):
            raise ValueError(f"{bag_path}: the chunk at episode {episode} step {step} has shape {act.shape}; the "
                             f"checkpoint's chunks are [{c}, {d}]")
        x = torch.from_numpy(np.concatenate([z, units.proprio_to_norm(proprio)])[None])  # float32[1, S]
        ref_n = torch.from_numpy(units.action_to_norm(ref[:c])[None])  # float32[1, C, D]
        act_n = torch.from_numpy(units.action_to_norm(act[:c])[None])  # float32[1, C, D]
        with torch.no_grad():
            mu_n = model.actor(x, ref_n)  # float32[1, C, D] in [-1, 1]
            q = {}
            if model.critic is not None:
                for name, chunk in (("executed", act_n), ("actor", mu_n), ("reference", ref_n)):
                    q[name] = float(model.critic(x, chunk).min(0).values[0])
        mu_phys = units.action_to_phys(mu_n[0].numpy())  # float32[C, D]
        records.append({
            "episode": episode,
            "step": step,
            "source": source.name.lower(),
            "policy_version": version,
            "rms_actor_vs_executed": float(torch.sqrt(((mu_n - act_n) ** 2).mean())),
            "rms_actor_vs_reference": float(torch.sqrt(((mu_n - ref_n) ** 2).mean())),
            "rms_executed_vs_reference": float(torch.sqrt(((act_n - ref_n) ** 2).mean())),
            "abs_diff_per_dim": np.abs(mu_phys - act[:c]).mean(0).tolist(),  # physical units, per action dim
            **{f"q_{k}": v for k, v in q.items()},
        })
    if not records:
        raise ValueError(f"{bag_path}: no chunk in {chunk_topic} answers a recorded critical-phase request")
    summary = _summarize(records, model, d, bag_path, checkpoint)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _plot(records, model.critic is not None, out)
    (out / "eval.json").write_text(json.dumps({"summary": summary, "chunks": records}, indent=1))
    return summary


def _summarize(records: list[dict], model: EvalModel, d: int, bag_path: str | Path, ckpt: str | Path) -> dict:
    by_source: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_source[r["source"]].append(r)

    def stats(rows: list[dict]) -> dict[str, float]:
        out = {"chunks": len(rows)}
        for key in ("rms_actor_vs_executed", "rms_actor_vs_reference", "q_executed", "q_actor", "q_reference"):
            if key in rows[0]:
                out[f"mean_{key}"] = round(float(np.mean([r[key] for r in rows])), 5)
        return out

    return {
        "bag": str(bag_path),
        "checkpoint": str(ckpt),
        "model": model.source,
        "episodes": len({r["episode"] for r in records}),
        "critic": model.critic is not None,
        "all": stats(records),
        "by_source": {k: stats(v) for k, v in sorted(by_source.items())},
        "mean_abs_diff_per_dim": np.mean([r["abs_diff_per_dim"] for r in records], axis=0).round(7).tolist(),
    }


def _plot(records: list[dict], with_critic: bool, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    episodes = sorted({r["episode"] for r in records})
    colors = {"vla": "tab:gray", "actor": "tab:blue", "human": "tab:red"}
    fig, ax = plt.subplots(figsize=(8, 4), dpi=120)
    labeled: set[str] = set()
    for ep in episodes:
        rows = [r for r in records if r["episode"] == ep]
        ax.plot([r["step"] for r in rows], [r["rms_actor_vs_executed"] for r in rows], color="0.8", lw=0.8, zorder=1)
        for source, color in colors.items():
            pts = [r for r in rows if r["source"] == source]
            if pts:
                label = None if source in labeled else f"executed: {source}"
                labeled.add(source)
                ax.scatter([r["step"] for r in pts], [r["rms_actor_vs_executed"] for r in pts], s=12, color=color,
                           label=label, zorder=2)
    ax.set_xlabel("control step in the episode")
    ax.set_ylabel("RMS(actor mean - executed chunk)\n[normalized: 1 = action bound]")
    ax.set_title(f"checkpoint actor vs executed chunks, {len(episodes)} episode(s)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "chunk_diff.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4), dpi=120)
    if with_critic:
        styles = (("q_executed", "Q(x, executed)", "-"), ("q_actor", "Q(x, actor mean)", "--"),
                  ("q_reference", "Q(x, VLA reference)", ":"))
        for i, ep in enumerate(episodes):
            rows = [r for r in records if r["episode"] == ep]
            color = plt.cm.tab10(i % 10)
            for key, label, style in styles:
                ax.plot([r["step"] for r in rows], [r[key] for r in rows], style, color=color,
                        label=label if i == 0 else None)
        ax.set_xlabel("control step in the episode")
        ax.set_ylabel("min(Q1, Q2)")
        ax.set_title("critic values along each episode (one color per episode)")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no critic in this checkpoint (an actor snapshot);\nevaluate a learner checkpoint_dir",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(out / "critic_values.png")
    plt.close(fig)
