"""Session report: throughput curve, duration histogram and a JSON/Markdown summary from episode logs.

Throughput is the paper's measure: successes per 10 minutes of critical-phase time. Inputs are the JSON-lines
episode logs the sim driver writes (rlt.sim.episode_log) for the training run and for the evaluations of the base
policy and of RLT on one fixed list of seeds, plus the scripted teleoperator's durations on the same seeds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def throughput(episodes: Sequence[dict]) -> float:
    """Successes per 10 minutes of critical-phase time (0 when no critical-phase time was spent)."""
    seconds = sum(e["critical_steps"] / e["control_hz"] for e in episodes)
    return 600.0 * sum(bool(e["success"]) for e in episodes) / seconds if seconds else 0.0


def evaluation_stats(episodes: Sequence[dict]) -> dict[str, float]:
    """Success rate, throughput and median critical-phase steps of successful episodes."""
    if not episodes:
        raise ValueError("evaluation_stats: no episodes (did the evaluation run finish?)")
    wins = [e["critical_steps"] for e in episodes if e["success"]]
    return {
        "episodes": len(episodes),
        "success_rate": float(np.mean([bool(e["success"]) for e in episodes])),
        "throughput_per_10min": throughput(episodes),
        "median_steps_success": float(np.median(wins)) if wins else float("nan"),
    }


def throughput_ratio(rlt_stats: dict[str, float], base_stats: dict[str, float]) -> float:
    """RLT's throughput over the base policy's (`evaluation_stats` of each); nan when the base had no success."""
    base_rate = base_stats["throughput_per_10min"]
    return rlt_stats["throughput_per_10min"] / base_rate if base_rate else float("nan")  # undefined, not infinite


def intervention_stats(train: Sequence[dict]) -> dict[str, float]:
    """Who drove the training's critical phase: the human's share of its control steps, and the episodes it drove
    in (from the driver's per-episode `critical_rows` counts by source)."""
    rows = [e.get("critical_rows", {}) for e in train]
    total = sum(sum(r.values()) for r in rows)
    human = sum(r.get("human", 0) for r in rows)
    return {"human_step_share": human / total if total else 0.0,
            "episodes_with_human": sum(bool(r.get("human")) for r in rows)}


def learning_curve(train: Sequence[dict], window: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """(minutes of RL data so far float[N], throughput over the last `window` episodes float[N])."""
    critical = [e for e in train if e["critical_steps"] > 0]
    minutes = np.cumsum([e["critical_steps"] / e["control_hz"] / 60.0 for e in critical])
    rate = np.array([throughput(critical[max(0, i + 1 - window) : i + 1]) for i in range(len(critical))])
    return minutes, rate


def write_report(
    out_dir: Path,
    train: Sequence[dict],
    base: Sequence[dict],
    rlt: Sequence[dict],
    teleop: Sequence[dict],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Write throughput.png, durations.png, summary.json and summary.md into `out_dir`; return the summary."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    base_stats, rlt_stats = evaluation_stats(base), evaluation_stats(rlt)
    teleop_stats = evaluation_stats(teleop) if teleop else None
    teleop_steps = [e["critical_steps"] for e in teleop if e["success"]]
    teleop_median = float(np.median(teleop_steps)) if teleop_steps else float("nan")
    ratio = throughput_ratio(rlt_stats, base_stats)
    minutes, rate = learning_curve(train)
    summary = {
        "base": base_stats,
        "rlt": rlt_stats,
        "throughput_ratio": ratio,
        "teleop": teleop_stats,
        "teleop_median_steps": teleop_median,
        "rl_data_minutes": float(minutes[-1]) if len(minutes) else 0.0,
        "train_episodes": len(train),
        "train_interventions": intervention_stats(train),
        **extra,
    }

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    if len(minutes):
        helped = ", operator take-overs included" if summary["train_interventions"]["episodes_with_human"] else ""
        ax.plot(minutes, rate, color="tab:blue", label=f"RLT while training (exploring{helped}, last 20 episodes)")
    ax.axhline(base_stats["throughput_per_10min"], color="tab:gray", ls="--", label="base VLA (eval)")
    ax.axhline(rlt_stats["throughput_per_10min"], color="tab:blue", ls=":", label="RLT final (eval)")
    if teleop_stats:
        ax.axhline(teleop_stats["throughput_per_10min"], color="tab:green", ls="-.", label="scripted teleop (demos)")
    ax.set_xlabel("minutes of RL data (critical-phase sim time)")
    ax.set_ylabel("successes per 10 min of critical phase")
    ax.set_title(f"Throughput: RLT {ratio:.2f}x the base policy")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "throughput.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    groups = [
        ("scripted teleop", list(teleop_steps), "tab:green"),
        ("base VLA", [e["critical_steps"] for e in base if e["success"]], "tab:gray"),
        ("RLT", [e["critical_steps"] for e in rlt if e["success"]], "tab:blue"),
    ]
    top = max([max(v) for _, v, _ in groups if v] + [10])
    bins = np.arange(0, top + 5, 5)
    for label, values, color in groups:
        if values:
            ax.hist(values, bins=bins, alpha=0.45, color=color, label=f"{label} (median {np.median(values):.0f})")
    ax.set_xlabel("critical-phase duration of successful episodes [control steps, 20 Hz]")
    ax.set_ylabel("episodes")
    ax.set_title("Critical-phase durations")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "durations.png")
    plt.close(fig)

    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    rows = [
        ("success rate", "success_rate", "{:.2f}"),
        ("throughput / 10 min", "throughput_per_10min", "{:.1f}"),
        ("median steps (successes)", "median_steps_success", "{:.0f}"),
    ]
    columns = [base_stats, rlt_stats, *([teleop_stats] if teleop_stats else [])]
    lines = ["# RLT sim session", "", "| | base VLA | RLT |" + (" scripted teleop |" if teleop_stats else ""),
             "|---" * (len(columns) + 1) + "|"]
    lines += ["| " + " | ".join([name, *(fmt.format(c[k]) for c in columns)]) + " |" for name, k, fmt in rows]
    lines += [
        "",
        f"- throughput ratio RLT / base: **{ratio:.2f}x**",
        f"- scripted-teleop median critical-phase steps: {teleop_median:.0f}",
        f"- RL data: {summary['rl_data_minutes']:.1f} min of critical-phase sim time in {len(train)} training episodes",
        f"- human interventions in training: {summary['train_interventions']['episodes_with_human']} episodes, "
        f"{summary['train_interventions']['human_step_share']:.0%} of the critical-phase steps",
    ]
    lines += [f"- {k}: {v}" for k, v in extra.items()]
    lines += ["", "![throughput](throughput.png)", "", "![durations](durations.png)", ""]
    (out_dir / "summary.md").write_text("\n".join(lines))
    return summary
