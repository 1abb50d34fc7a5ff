"""`rlt bench realtime`'s verdict on a phase whose stop needed SIGKILL (the end-to-end run is tests/ros)."""

import signal
from types import SimpleNamespace

import pytest

from rlt.bench.realtime import only_wedged_at_stop

DONE = "sim_arm exited with 0"  # the judge ended the phase: every episode is in the log


@pytest.mark.parametrize(("stop_reason", "returncodes", "killed", "kept"), [
    (DONE, {"sim_arm": 0, "vla": -9, "actor": 0}, ["vla"], True),  # hung on its way out, nothing to save
    (DONE, {"sim_arm": 0, "vla": -9, "actor": -signal.SIGTERM}, ["vla"], True),
    (DONE, {"sim_arm": 0, "learner": -9}, ["learner"], False),  # it saves the actor's weights while stopping
    (DONE, {"sim_arm": 0, "recorder": -9}, ["recorder"], False),  # it closes the bag while stopping
    (DONE, {"sim_arm": 0, "vla": -9, "actor": 1}, ["vla"], False),  # another node failed
    ("sim_arm exited with 1", {"sim_arm": 1, "vla": -9}, ["vla"], False),  # the arm failed: episodes missing
    (DONE, {"sim_arm": 0, "vla": 1}, [], False),  # a failure, not a kill
])
def test_a_phase_is_kept_only_when_a_node_without_state_hung_after_the_judge_was_done(
        stop_reason, returncodes, killed, kept):
    supervisor = SimpleNamespace(stop_reason=stop_reason, returncodes=returncodes, killed=killed)
    assert only_wedged_at_stop(supervisor) is kept
