"""`rlt bench bag`: how fast the bag recorder writes at the sim session's rates, whether it loses anything, and how
much headroom its writer has.

This module owns the measurement. The session part launches the sim session's nodes (sim driver in lockstep as
fast as the nodes answer, sim camera with 2 cameras at 96 px, the fake VLA, actor and learner; critical-phase
episodes so every kind of message flows) plus a `bag_recorder`, each its own process, stops them after `seconds`,
and reads the recording: MB/s and messages/s over the recording, per topic, the drops the recorder counted, and a
completeness check (every recorded sim step has its two images and its joint state). The writer part replays the
same messages into a fresh `BagRecorder` as fast as it takes them, without ROS: the MB/s the writer sustains, i.e.
the headroom over the session's rate. Pure Python: the ROS side runs in the node processes.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from rlt.app.launch import private_domain
from rlt.bags.io import BagReader
from rlt.bags.recorder import STATS_KEY, BagRecorder, RecorderConfig


def session_throughput(seconds: float, out_dir: Path, preset: str = "main") -> dict[str, Any]:
    """Record the sim session for `seconds` on a private ROS domain; returns the recorder's statistics and the
    completeness check."""
    from rlt.app.launch import Supervisor, load_session, plan, single
    from rlt.app.session import session_params

    out_dir.mkdir(parents=True, exist_ok=True)
    bag = out_dir / "session_bag"
    shutil.rmtree(bag, ignore_errors=True)
    overrides = {
        "/**": {"sim.preset": preset},
        "sim_driver": {"driver.mode": "critical", "driver.seed": 0},
        "vla": {"fake": True},
        "actor": {"actor.mode": "train", "rl.warmup_episodes": 2},
    }
    params = session_params(overrides, out_dir / "params.yaml", "sim")
    with private_domain():
        launches = plan(load_session("sim"), params)  # the node processes inherit the private domain
        launches.append(single("bag_recorder", "bag_recorder", {"recorder.out": str(bag)}))
        supervisor = Supervisor(launches, out_dir / "logs")
        supervisor.run(timeout_s=seconds)
    if not (bag / "metadata.yaml").is_file():
        raise RuntimeError(f"the recorder did not close {bag}: {supervisor.returncodes}; see {out_dir / 'logs'}")
    with BagReader(bag) as reader:
        stats = json.loads(reader.metadata[STATS_KEY])
        stats["complete"] = _completeness(reader)
    stats["bag"] = str(bag)
    return stats


def _completeness(reader: BagReader) -> dict[str, Any]:
    """Recorded sim steps lacking an image or a joint state (the last 0.5 s of sim time, in flight at the stop, and
    the first 50 steps, which a late subscriber gets from the publishers' kept history or not, are left out)."""
    stamps: dict[str, set[int]] = defaultdict(set)
    wanted = [t for t in reader.topics if t.endswith(("/image_raw", "/joint_states", "/sim/state"))]
    for topic, _, msg in reader.messages(wanted):
        stamps[topic].add(msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)
    state_topic = next((t for t in stamps if t.endswith("/sim/state")), None)
    if state_topic is None:
        return {"sim_steps": 0}
    cutoff = max(stamps[state_topic]) - 500_000_000
    steps = sorted(s for s in stamps[state_topic] if s <= cutoff)[50:]
    missing = {t: sum(1 for s in steps if s not in v) for t, v in stamps.items() if t != state_topic}
    return {"sim_steps": len(steps), "missing": missing}


def writer_capacity(bag: Path, out_dir: Path, repeat: int = 3) -> dict[str, Any]:
    """Push the messages of `bag` into a fresh BagRecorder as fast as it accepts them; the writer's MB/s and msgs/s."""
    with BagReader(bag) as reader:
        topics = dict(reader.topics)
        qos = reader.qos
        messages = [(topic, raw) for topic, _, raw in reader.raw_messages()]
    target = out_dir / "capacity_bag"
    shutil.rmtree(target, ignore_errors=True)
    recorder = BagRecorder(target, RecorderConfig(queue_mb=64.0))
    for topic, msgtype in topics.items():
        recorder.add_topic(topic, msgtype, qos[topic])
    t0 = time.perf_counter()
    for _ in range(repeat):
        for topic, raw in messages:
            while not recorder.put(topic, raw):  # queue full: the writer is the bottleneck, wait for it
                recorder.stats.topics[topic].dropped -= 1  # a retry, not a loss
                time.sleep(0.001)
    summary = recorder.stop()
    wall = time.perf_counter() - t0
    shutil.rmtree(target, ignore_errors=True)
    return {
        "messages": summary["messages"],
        "megabytes": summary["megabytes"],
        "wall_s": round(wall, 3),
        "mb_per_s": round(summary["megabytes"] / wall, 1),
        "messages_per_s": round(summary["messages"] / wall, 1),
    }


def format_report(session: dict[str, Any], capacity: dict[str, Any]) -> str:
    lines = [
        f"sim session recording ({session['wall_s']} s, 2 cameras at 96 px, lockstep sim, fake VLA, actor, learner):",
        f"  while messages flowed ({session['active_s']} s): {session['active_mb_per_s']} MB/s, "
        f"{session['active_messages_per_s']} msgs/s; over the whole recording: {session['mb_per_s']} MB/s, "
        f"{session['messages_per_s']} msgs/s",
        f"  {session['messages']} messages, {session['megabytes']} MB; dropped {session['dropped']}; queue peak "
        f"{session['queue_peak_mb']} MB; {session['flushes']} flushes; writer busy {session['writer_busy_s']} s",
        f"  complete: {session['complete']}",
        "  per topic (messages, MB):",
    ]
    wall = session["active_s"]
    for topic, t in session["topics"].items():
        lines.append(f"    {topic:<28} {t['messages']:>7} msgs {t['bytes'] / 1e6:8.2f} MB  "
                     f"({t['messages'] / wall:7.1f} msgs/s)")
    lines += [
        f"writer alone on the same messages: {capacity['mb_per_s']} MB/s, {capacity['messages_per_s']} msgs/s "
        f"({capacity['messages']} messages in {capacity['wall_s']} s)",
        f"headroom: {capacity['mb_per_s'] / max(session['active_mb_per_s'], 1e-9):.0f}x the session's MB/s",
    ]
    return "\n".join(lines)
