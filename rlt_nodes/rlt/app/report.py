"""Session report: throughput curves, duration histogram and a JSON/Markdown summary from episode logs.

Throughput is the paper's measure: successes per 10 minutes of critical-phase time. Inputs are the JSON-lines
episode logs the sim driver writes (rlt.sim.episode_log) for each RLT run's training and evaluation and for the base
policy's evaluation, all on one fixed list of seeds, plus the demos' teleoperator on the same seeds and the recorded
demos' durations. Every figure compared across policies gets a 95 % bootstrap interval paired by seed
(`paired_bootstrap`): the same seeds are resampled for both policies, so scene difficulty cancels in the ratio.
"""

from __future__ import annotations

import dataclasses
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


BOOTSTRAP_RESAMPLES = 4000  # resamples of the seed list per interval: the 2.5 / 97.5 percentiles settle to ~1 %


def _by_seed(episodes: Sequence[dict]) -> dict[int, dict]:
    seeds = [e["seed"] for e in episodes]
    if len(set(seeds)) != len(seeds):
        raise ValueError("episode log lists a seed twice: expected one episode per evaluation seed")
    return dict(zip(seeds, episodes, strict=True))


def paired_bootstrap(base: Sequence[dict], other: Sequence[dict], resamples: int = BOOTSTRAP_RESAMPLES,
                     seed: int = 0) -> dict[str, list[float]]:
    """95 % percentile intervals over seed resamples: success rate and throughput of `other` and the throughput
    ratio other / base. Both are episode logs on the same seeds (each episode has "seed"); a seed is resampled for
    both at once. Raises ValueError when the seed lists differ."""
    a, b = _by_seed(base), _by_seed(other)
    if set(a) != set(b):
        raise ValueError(f"paired_bootstrap: the logs cover different seeds ({len(set(a) ^ set(b))} not shared)")
    seeds = sorted(a)
    win = np.array([[bool(x[s]["success"]) for s in seeds] for x in (a, b)], np.float64)  # float64[2, N]
    sec = np.array([[x[s]["critical_steps"] / x[s]["control_hz"] for s in seeds] for x in (a, b)])  # float64[2, N]
    pick = np.random.default_rng(seed).integers(0, len(seeds), (resamples, len(seeds)))  # int[R, N]
    rate = 600.0 * win[:, pick].sum(-1) / np.maximum(sec[:, pick].sum(-1), 1e-9)  # float64[2, R]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = rate[1] / rate[0]  # float64[R]; inf / nan where a resample has no base success
    ratio = ratio[np.isfinite(ratio)]

    def interval(x: np.ndarray) -> list[float]:
        return [float(v) for v in np.percentile(x, [2.5, 97.5])] if len(x) else [float("nan")] * 2

    return {"success_rate": interval(win[1, pick].mean(-1)), "throughput_per_10min": interval(rate[1]),
            "throughput_ratio": interval(ratio)}


def learning_curve(train: Sequence[dict], window: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """(minutes of RL data so far float[N], throughput over the last `window` episodes float[N])."""
    critical = [e for e in train if e["critical_steps"] > 0]
    minutes = np.cumsum([e["critical_steps"] / e["control_hz"] / 60.0 for e in critical])
    rate = np.array([throughput(critical[max(0, i + 1 - window) : i + 1]) for i in range(len(critical))])
    return minutes, rate


@dataclasses.dataclass(frozen=True)
class RunLogs:
    """An RLT run's episode logs: its training and its evaluation on the evaluation seeds."""

    name: str  # summary key: "rlt", "rlt_plain_token", ...
    label: str  # what it is, as tables and plots say it
    train: Sequence[dict]
    evaluation: Sequence[dict]


BASE_LABEL = "base VLA"
TELEOP_LABEL = "demo teleoperator (scripted, true pose)"  # the settings that recorded the demos (recipe.EXPERT)


def faster_share(episodes: Sequence[dict], steps: float) -> float:
    """Share of the successful episodes that take fewer than `steps` control steps (nan: no success)."""
    wins = [e["critical_steps"] for e in episodes if e["success"]]
    return float(np.mean([w < steps for w in wins])) if wins else float("nan")


def policy_row(label: str, episodes: Sequence[dict], base: Sequence[dict], fastest_demo: float) -> dict[str, Any]:
    """One row of the headline table: evaluation stats, intervals paired with the base VLA, share faster than
    the fastest recorded demo."""
    stats = evaluation_stats(episodes)
    ci = paired_bootstrap(base, episodes)
    return {"label": label, **stats, "success_rate_ci95": ci["success_rate"],
            "throughput_ci95": ci["throughput_per_10min"],
            "throughput_ratio": throughput_ratio(stats, evaluation_stats(base)),
            "throughput_ratio_ci95": ci["throughput_ratio"],
            "faster_than_fastest_demo": faster_share(episodes, fastest_demo)}


def headline_table(summary: dict[str, Any]) -> str:
    """The Markdown table of a session's summary: one row per policy (base, RLT runs, demo teleoperator)."""
    lines = ["| policy | success | successes / 10 min (95 % CI) | ratio to base (95 % CI) | median steps | "
             "faster than every demo |", "|---|---|---|---|---|---|"]
    for row in summary["rows"]:
        lo, hi = row["throughput_ci95"]
        rlo, rhi = row["throughput_ratio_ci95"]
        lines.append(f"| {row['label']} | {row['success_rate']:.2f} | {row['throughput_per_10min']:.0f} "
                     f"({lo:.0f}-{hi:.0f}) | {row['throughput_ratio']:.2f}x ({rlo:.2f}-{rhi:.2f}) | "
                     f"{row['median_steps_success']:.0f} | {row['faster_than_fastest_demo']:.0%} |")
    return "\n".join(lines)


def write_report(
    out_dir: Path,
    base: Sequence[dict],
    runs: Sequence[RunLogs],
    teleop: Sequence[dict],
    demo_durations: Sequence[int],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Write throughput.png, durations.png, summary.json and summary.md into `out_dir`; return the summary. The
    first run is the session's own: its figures are also the summary's top-level "rlt" and "throughput_ratio"."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not runs:
        raise ValueError("write_report: no RLT run")
    out_dir.mkdir(parents=True, exist_ok=True)
    fastest_demo = float(min(demo_durations)) if demo_durations else float("nan")
    rows = [policy_row(BASE_LABEL, base, base, fastest_demo)]
    rows += [policy_row(run.label, run.evaluation, base, fastest_demo) for run in runs]
    if teleop:
        rows.append(policy_row(TELEOP_LABEL, teleop, base, fastest_demo))
    main = runs[0]
    teleop_steps = [e["critical_steps"] for e in teleop if e["success"]]
    minutes, rate = learning_curve(main.train)
    summary = {
        "rows": rows,
        "base": evaluation_stats(base),
        "rlt": evaluation_stats(main.evaluation),
        "throughput_ratio": rows[1]["throughput_ratio"],
        "throughput_ratio_ci95": rows[1]["throughput_ratio_ci95"],
        "runs": {run.name: {"label": run.label, "row": i + 1, "train_episodes": len(run.train),
                            "train_interventions": intervention_stats(run.train)} for i, run in enumerate(runs)},
        "teleop": evaluation_stats(teleop) if teleop else None,
        "teleop_median_steps": float(np.median(teleop_steps)) if teleop_steps else float("nan"),
        "demos": {"successful_episodes": len(demo_durations), "fastest_steps": fastest_demo,
                  "median_steps": float(np.median(demo_durations)) if demo_durations else float("nan")},
        "rl_data_minutes": float(minutes[-1]) if len(minutes) else 0.0,
        "train_episodes": len(main.train),
        "train_interventions": intervention_stats(main.train),
        **extra,
    }
    colors = ["tab:blue", "tab:orange", "tab:purple", "tab:red", "tab:brown"]

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for run, color in zip(runs, colors, strict=False):
        minutes, rate = learning_curve(run.train)
        if len(minutes):
            ax.plot(minutes, rate, color=color, lw=1, label=f"{run.label}, training (exploring, last 20 episodes)")
        ax.axhline(throughput(run.evaluation), color=color, ls=":", label=f"{run.label}, final (eval)")
    ax.axhline(rows[0]["throughput_per_10min"], color="tab:gray", ls="--", label=f"{BASE_LABEL} (eval)")
    if teleop:
        ax.axhline(rows[-1]["throughput_per_10min"], color="tab:green", ls="-.", label=f"{TELEOP_LABEL} (eval)")
    ax.set_xlabel("minutes of RL data (critical-phase sim time)")
    ax.set_ylabel("successes per 10 min of critical phase")
    ax.set_title(f"Throughput: {main.label} {summary['throughput_ratio']:.2f}x the base VLA")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=6)
    fig.tight_layout()
    fig.savefig(out_dir / "throughput.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    groups = [
        ("recorded demos (wider starts)", list(demo_durations), "tab:olive"),
        (TELEOP_LABEL, teleop_steps, "tab:green"),
        (BASE_LABEL, [e["critical_steps"] for e in base if e["success"]], "tab:gray"),
        *((run.label, [e["critical_steps"] for e in run.evaluation if e["success"]], color)
          for run, color in zip(runs, colors, strict=False)),
    ]
    top = max([max(v) for _, v, _ in groups if v] + [10])
    bins = np.arange(0, top + 5, 5)
    for label, values, color in groups:
        if values:
            ax.hist(values, bins=bins, alpha=0.4, color=color, label=f"{label} (median {np.median(values):.0f})")
    ax.set_xlabel("critical-phase duration of successful episodes [control steps, 20 Hz]")
    ax.set_ylabel("episodes")
    ax.set_title("Critical-phase durations")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out_dir / "durations.png")
    plt.close(fig)

    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    lines = ["# RLT sim session", "", f"Evaluated on the {extra.get('evaluation_seeds', 'evaluation seeds')}; "
             "intervals: 95 % bootstrap over seeds, paired with the base VLA.", "", headline_table(summary), ""]
    lines += [f"- recorded demos: {len(demo_durations)} successful, fastest {fastest_demo:.0f} steps, median "
              f"{summary['demos']['median_steps']:.0f}; 'faster than every demo' = successes shorter than the fastest"]
    for run in runs:
        human = summary["runs"][run.name]["train_interventions"]
        lines.append(f"- {run.label}: trained on {learning_curve(run.train)[0][-1:].sum():.1f} min of RL data in "
                     f"{len(run.train)} episodes; the operator drove {human['human_step_share']:.0%} of the "
                     f"critical-phase steps, in {human['episodes_with_human']} episodes")
    lines += [f"- {k}: {v}" for k, v in extra.items()]
    lines += ["", "![throughput](throughput.png)", "", "![durations](durations.png)", ""]
    (out_dir / "summary.md").write_text("\n".join(lines))
    return summary


README_BEGIN = "<!-- headline: generated from docs/headline_summary.json by `rlt report readme`; do not edit -->"
README_END = "<!-- end of headline -->"


def readme_block(summary: dict[str, Any]) -> str:
    """The README's headline: where it was measured, then `headline_table`."""
    return "\n".join([README_BEGIN, f"Evaluated on the {summary['evaluation_seeds']}, {summary['rows'][0]['episodes']} "
                      "episodes per policy; intervals: 95 % bootstrap over seeds, paired with the base VLA.", "",
                      headline_table(summary), README_END])


def update_readme(readme: Path, summary: dict[str, Any]) -> str:
    """`readme`'s text with the block between README_BEGIN and README_END replaced by `readme_block(summary)`."""
    text = readme.read_text()
    if text.count(README_BEGIN) != 1 or text.count(README_END) != 1:
        raise ValueError(f"{readme}: expected one headline block ({README_BEGIN} ... {README_END})")
    head, rest = text.split(README_BEGIN)
    return head + readme_block(summary) + rest.split(README_END, 1)[1]
