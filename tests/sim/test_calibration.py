"""Calibration of the main preset with the scripted expert (full episodes, no cameras, fixed seeds).

The expert's success must fall monotonically with its perception bias sigma, from >= 95 % at sigma = 0 to
40-80 % at sigma = 1 mm, and no contact may penetrate 0.05 mm in any of these episodes (0.5 mm clearance).
Full episodes (approach from 7.6 cm, then insertion) are the mode demonstrations are recorded in. Every level
uses the same 100 scenes and the same standard-normal draws (common random numbers), so the ordering is not
an accident of sampling: with 100 episodes the binomial spread is about 5 points, and adjacent levels differ
by 3 to 40 points. About 10 s on one core.
"""

import itertools

import pytest

pytestmark = pytest.mark.sim
pytest.importorskip("mujoco")

from rlt.sim.config import ExpertConfig, SimConfig  # noqa: E402
from rlt.sim.env import PegInsertEnv  # noqa: E402
from rlt.sim.expert import ExpertStats, evaluate_expert  # noqa: E402

EPISODES = 100
BIAS_LEVELS = (0.0, 0.0005, 0.001, 0.0015, 0.002)  # m


@pytest.fixture(scope="module")
def calibration() -> dict[float, ExpertStats]:
    with PegInsertEnv(SimConfig(preset="main", cameras=())) as env:
        return {sigma: evaluate_expert(env, ExpertConfig(bias_xy_sigma=sigma), EPISODES) for sigma in BIAS_LEVELS}


def test_success_falls_monotonically_with_perception_bias(calibration):
    rates = [calibration[sigma].success_rate for sigma in BIAS_LEVELS]
    assert all(a >= b for a, b in itertools.pairwise(rates)), rates
    assert rates[0] > rates[-1] + 0.5, rates


def test_unbiased_expert_almost_always_succeeds(calibration):
    assert calibration[0.0].success_rate >= 0.95


def test_one_millimetre_bias_leaves_headroom(calibration):
    assert 0.40 <= calibration[0.001].success_rate <= 0.80


def test_contacts_stay_shallow_at_half_a_millimetre_clearance(calibration):
    deepest = max(stats.max_penetration for stats in calibration.values())
    assert deepest < 0.05e-3, f"{deepest * 1e3:.4f} mm"


def test_successful_episodes_are_reasonably_fast(calibration):
    assert calibration[0.0].mean_duration < 55  # control steps at 20 Hz, of 160
