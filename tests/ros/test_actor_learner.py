"""Actor and learner as separate processes: transitions flow to the learner, weights flow back, versions advance.

The VLA and the driver are stood in for by helpers/fake_vla_driver.py (its own process, as in the split test):
it exits 0 once the actor acts with learned weights of version >= 2, always non-decreasing.
"""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ros
HELPER = Path(__file__).parent / "helpers" / "fake_vla_driver.py"


def test_weights_version_advances(ros, spawn, tiny_rl_params):
    learner = spawn("learner", tiny_rl_params)
    actor = spawn("actor", tiny_rl_params)
    result = subprocess.run([sys.executable, str(HELPER), "90"], env=ros.env(), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"{result.stdout}\n--- actor\n{actor.output()}\n--- learner\n{learner.output()}"
    assert learner.proc.poll() is None, learner.output()
    assert actor.proc.poll() is None, actor.output()
