"""The in-process sim session (`rlt bench session`): the session's RL parameters, lockstep UTD, common seeds."""

import numpy as np
import pytest
import yaml

pytest.importorskip("mujoco")

from rlt.app.inprocess import (
    ORACLE_DIM,
    SIM_PARAMS,
    InProcessConfig,
    format_report,
    run_inprocess,
    session_rl_config,
)
from rlt.execution import Chunking
from rlt.rl.config import PRESETS, RLConfig

pytestmark = pytest.mark.sim

TINY = ("learning_starts=8", "batch_size=8", "hidden=[32, 32]", "warmup_episodes=1", "weights_every=10")


def test_rl_parameters_are_the_sim_sessions():
    rl = session_rl_config(SIM_PARAMS, 256)
    assert isinstance(rl, RLConfig) and rl.token_dim == 256
    assert rl == RLConfig(token_dim=256, **PRESETS["peg_insert"])  # the named preset, nothing else
    # C and the stride are set once, in the rl block: no other node's block restates them
    params = yaml.safe_load(SIM_PARAMS.read_text())
    for node, block in params.items():
        names = yaml.safe_dump(block)
        assert "chunk_len" not in names and "observe_stride" not in names and "stride" not in names, node
    rl = session_rl_config(SIM_PARAMS, 3, ("sigma=0.03", "hidden=[32, 32]", "stride=2", "chunk_len=10"))
    assert rl.sigma == pytest.approx(0.03) and rl.hidden == (32, 32) and rl.token_dim == 3
    # the driver observes where the assembler starts its windows: every stride, or only at chunk boundaries
    assert Chunking.of(rl) == Chunking(10, 2) and Chunking.of(rl.replace(stride=10)) == Chunking(10, 0)


def test_bad_override_names_the_field():
    with pytest.raises(ValueError, match="rl_overrides"):
        InProcessConfig(rl_overrides=("sigma",))
    with pytest.raises(ValueError, match="nonsense"):
        session_rl_config(SIM_PARAMS, 3, ("nonsense=1",))


@pytest.mark.slow
def test_oracle_session_trains_at_the_utd_ratio_and_evaluates_on_common_seeds():
    cfg = InProcessConfig(fake_vla=True, state="oracle", rl_minutes=0.15, eval_episodes=2, rl_overrides=TINY)
    result = run_inprocess(cfg, log=lambda line: None)
    rl = result["rl"]
    assert rl["token_dim"] == ORACLE_DIM
    critical = sum(e["critical_steps"] for e in result["train"])
    assert critical >= 0.15 * 60 * 20  # the budget of critical-phase steps at 20 Hz was used up
    # lockstep: exactly UTD x the transitions received (one per executed chunk) once learning started
    assert result["transitions"] >= 8 and result["learner_updates"] == int(rl["utd"] * result["transitions"])
    assert result["base"]["episodes"] == result["rlt"]["episodes"] == 2
    assert np.isfinite(result["throughput_ratio"]) or result["base"]["throughput_per_10min"] == 0
    assert "throughput ratio" in format_report(result)


@pytest.mark.slow
def test_a_sweep_runs_each_config_in_its_own_process_and_reports_the_spread():
    from rlt.app.sweep import format_sweep, run_sweep

    cfg = InProcessConfig(fake_vla=True, state="oracle", rl_minutes=0.05, eval_episodes=2, rl_overrides=TINY)
    configs = [cfg.replace(rl_overrides=(*TINY, f"seed={seed}")) for seed in (0, 1)]
    result = run_sweep(configs, jobs=2)
    assert [r["rl_seed"] for r in result["runs"]] == [0, 1]
    assert all(r["seeds"].startswith("tuning range") for r in result["runs"])  # sweeps tune: never the final seeds
    spread = result["aggregate"]["base_success"]
    assert spread["min"] <= spread["mean"] <= spread["max"]
    assert "RL seed" in format_sweep(result) and list(result["per_build"]) == [cfg.model_path]
