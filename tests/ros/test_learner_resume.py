"""SIGKILL the learner node and restart it: it resumes from its last checkpoint with the replay buffer intact."""

import signal
import time

import numpy as np
import pytest
from rlt_msgs.msg import Transition as TransitionMsg

from rlt.types import Transition
from rlt_nodes import convert, qos

pytestmark = pytest.mark.ros
RL = {
    "rl.token_dim": 8,
    "rl.hidden": "[16, 16]",
    "rl.learning_starts": 4,
    "rl.batch_size": 4,
    "rl.num_threads": 1,
    "rl.buffer_capacity": 100,
}


def transition(k):
    rng = np.random.default_rng(k)
    return Transition(
        rng.normal(size=8),
        rng.normal(size=12),
        rng.normal(0, 1e-3, (10, 4)),
        rng.normal(0, 1e-3, (10, 4)),
        np.zeros(10),
        False,
        False,
        rng.normal(size=8),
        rng.normal(size=12),
        rng.normal(0, 1e-3, (10, 4)),
        step=k,
    )


def test_sigkill_then_resume(ros, spawn, tmp_path):
    ckpt = tmp_path / "learner"
    params = {**RL, "checkpoint_dir": str(ckpt), "checkpoint_every_s": 0.5}
    first = spawn("learner", params)
    node = ros.node("replay_source")
    pub = node.create_publisher(TransitionMsg, "rl/transitions", qos.REPLAY)
    ros.spin_until(lambda: pub.get_subscription_count() > 0, 30, "the learner's replay subscription")
    for k in range(20):
        pub.publish(convert.transition_to_msg(transition(k)))
    deadline = time.monotonic() + 30
    while not (ckpt / "LATEST").is_file() or "20 transitions" not in first.output():
        assert time.monotonic() < deadline, first.output()
        ros.executor.spin_once(timeout_sec=0.1)
    time.sleep(1.0)  # let a checkpoint with all 20 land (every 0.5 s)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=10)
    second = spawn("learner", params, name="learner")
    deadline = time.monotonic() + 30
    while "resumed from" not in second.output():
        assert time.monotonic() < deadline and second.proc.poll() is None, second.output()
        time.sleep(0.1)
    line = next(x for x in second.output().splitlines() if "resumed from" in x)
    assert "20 transitions" in line, line
