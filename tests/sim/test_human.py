"""The scripted human through the real teleop mapping: which episodes and steps it takes over, and that its chunks
insert the peg when they drive (lockstep driver, no ROS)."""

import numpy as np
import pytest

pytest.importorskip("mujoco")

from rlt.sim.config import SimConfig
from rlt.sim.driver import DriverConfig, SimDriver
from rlt.sim.env import AXIS_NAMES, PegInsertEnv
from rlt.sim.human import ScriptedHuman, ScriptedHumanConfig
from rlt.teleop.teleop import Teleop, TeleopConfig, load_mapping
from rlt.types import ActionChunk, Event, Source

pytestmark = pytest.mark.sim


def run(human_cfg, episodes=2, fallback=(0.0, 0.0, 0.0, 0.0)):
    """Episodes driven by the human's chunks while it holds the dead-man, else by `fallback` held (still: zeros)."""
    sim, mapping = SimConfig(cameras=()), load_mapping("xbox")
    driver = SimDriver(PegInsertEnv(sim), DriverConfig(mode="critical", episodes=episodes, seed=7))
    human, teleop = ScriptedHuman(sim, human_cfg, mapping), Teleop(mapping, TeleopConfig())
    log = []  # (episode, step, teleop events, source of the chunk executed next)
    summaries = []
    while not driver.finished:
        out = driver.begin_episode()
        while True:
            for event in out.events:
                human.on_event(event)
            axes, buttons = human.on_state(out.sim_state)
            tele = teleop.on_joy(axes, buttons, out.stamp_ns)
            log.append((out.episode_id, out.step, [e.event for e in tele.events]))
            if out.episode_over:
                summaries.append(out.summary)
                break
            if out.request is not None and out.request.need_chunk:
                own = (np.tile(fallback, (10, 1)), Source.VLA)
                data, source = (tele.chunk.data, Source.HUMAN) if tele.chunk else own
                driver.submit_chunk(ActionChunk(data, AXIS_NAMES, source, stamp_ns=out.request.stamp_ns))
            out = driver.step()
    human.close()
    return log, summaries


def test_the_human_takes_over_in_chosen_episodes_and_inserts_the_peg():
    # the true-pose operator (an upper bound) inserts every time: this checks the path, not a person's skill
    log, summaries = run(ScriptedHumanConfig(every=2, offset=0, trigger="schedule", start_step=0,
                                             perception="privileged"))
    assert summaries[0]["success"] and summaries[0]["critical_rows"] == {"human": summaries[0]["steps"]}
    assert not summaries[1]["success"] and "human" not in summaries[1]["critical_rows"]  # not its episode
    begins = [(ep, step) for ep, step, events in log if Event.INTERVENE_BEGIN in events]
    assert begins == [(0, 0)]


def test_the_human_releases_after_its_window():
    log, _ = run(ScriptedHumanConfig(trigger="schedule", start_step=4, duration_steps=6), episodes=1)
    marks = [(step, events) for _, step, events in log if events]
    assert marks == [(4, [Event.INTERVENE_BEGIN]), (10, [Event.INTERVENE_END])]


def test_the_stall_trigger_takes_over_only_where_the_peg_stalls_and_the_human_recovers():
    cfg = ScriptedHumanConfig(perception="privileged")  # every episode, on a stall, to the episode's end
    log, summaries = run(cfg, episodes=6, fallback=(0.0, 0.0, -0.001, 0.0))  # straight down, whatever the offset
    begins = {ep: step for ep, step, events in log if Event.INTERVENE_BEGIN in events}
    for ep, summary in enumerate(summaries):
        if ep in begins:  # stalled on the rim: the human waited stall_steps, lifted, re-aligned and inserted
            assert begins[ep] >= cfg.stall_steps and summary["success"], (ep, begins[ep], summary)
        else:  # the blind descent went in by itself
            assert summary["success"] and "human" not in summary["critical_rows"], (ep, summary)
    assert 0 < len(begins) < len(summaries)  # seed 7 gives both kinds
    held_still, _ = run(cfg, episodes=2)  # hovering above the rim is no stall
    assert not any(events for _, _, events in held_still)


def test_the_default_operator_perceives_with_error_and_the_privileged_one_does_not():
    """Same episodes, same trigger: the noisy operator's commands differ from the true-pose operator's, which is
    an explicit, labelled option (an upper bound), never the default."""
    assert ScriptedHumanConfig().perception == "noisy"
    logs = {}
    for perception in ("noisy", "privileged"):
        sim, mapping = SimConfig(cameras=()), load_mapping("xbox")
        human = ScriptedHuman(sim, ScriptedHumanConfig(trigger="schedule", start_step=0, perception=perception),
                              mapping)
        assert (human.expert.cfg.bias_xy_sigma > 0) == (perception == "noisy")
        driver = SimDriver(PegInsertEnv(sim), DriverConfig(mode="critical", episodes=1, seed=7))
        out = driver.begin_episode()
        for event in out.events:
            human.on_event(event)
        logs[perception] = human.on_state(out.sim_state)[0]
        human.close()
    assert not np.array_equal(logs["noisy"], logs["privileged"])
    with pytest.raises(ValueError, match="perception"):
        ScriptedHumanConfig(perception="oracle")
