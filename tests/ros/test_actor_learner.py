"""Actor and learner as separate processes: transitions flow to the learner, weights flow back, versions advance."""

import numpy as np
import pytest
from rlt_msgs.msg import ActionChunk, PolicyWeights, VlaOutput

from rlt.types import ActionChunk as Chunk
from rlt.types import ChunkRequest, Phase, Source
from rlt.types import VlaOutput as Output
from rlt_nodes import convert, qos

pytestmark = pytest.mark.ros
AXES = ("dx", "dy", "dz", "dyaw")
RL = {
    "rl.token_dim": 8,
    "rl.hidden": "[32, 32]",
    "rl.learning_starts": 4,
    "rl.batch_size": 4,
    "rl.weights_every": 5,
    "rl.warmup_episodes": 0,
    "rl.buffer_capacity": 200,
    "rl.num_threads": 1,
}


def test_weights_version_advances(ros, spawn):
    learner = spawn("learner", RL)
    actor = spawn("actor", RL)
    node = ros.node("fake_vla_and_driver")
    chunks, versions = [], []
    node.create_subscription(
        ActionChunk, "action_chunk", lambda m: chunks.append(convert.chunk_from_msg(m)), qos.CONTROL
    )
    node.create_subscription(PolicyWeights, "rl/actor_weights", lambda m: versions.append(m.version), qos.LATCHED)
    pub = node.create_publisher(VlaOutput, "vla/output", qos.VLA_OUTPUT)
    ros.spin_until(
        lambda: (
            pub.get_subscription_count() > 0
            and node.count_subscribers("rl/transitions") > 0
            and node.count_publishers("rl/transitions") > 0
        ),
        30,
        "actor and learner discovery",
    )
    rng = np.random.default_rng(0)
    stamp = 0
    for episode in range(12):
        for step in range(0, 20, 2):
            stamp += 1
            executed = rng.normal(0, 1e-3, (0 if step == 0 else 2, 4))
            request = ChunkRequest(
                episode,
                step,
                AXES,
                Phase.CRITICAL,
                need_chunk=step % 10 == 0,
                executed=executed,
                sources=(Source.ACTOR,) * len(executed),
                rewards=np.zeros(len(executed)),
                stamp_ns=stamp,
            )
            ref = Chunk(rng.normal(0, 1e-3, (10, 4)), AXES, Source.VLA, stamp_ns=stamp)
            out = Output(request, ref, rng.normal(size=8), rng.normal(size=12), "fake", stamp)
            n = len(chunks)
            pub.publish(convert.vla_output_to_msg(out))
            if request.need_chunk:
                ros.spin_until(lambda n=n: len(chunks) > n, 20, f"a chunk for episode {episode} step {step}")
        if max((c.policy_version for c in chunks), default=-1) >= 2:
            break
    assert learner.proc.poll() is None, learner.output()
    assert actor.proc.poll() is None, actor.output()
    assert versions and max(versions) >= 2, f"learner published {versions}\n{learner.output()}"
    used = [c.policy_version for c in chunks if c.source == Source.ACTOR]
    assert used and used[-1] >= 2 and used == sorted(used), f"actor versions {used}\n{actor.output()}"
