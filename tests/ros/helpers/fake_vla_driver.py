"""Test helper process: stand in for the VLA and the driver in front of a real actor, until learned weights arrive.

Usage: fake_vla_driver.py TIMEOUT_S  (ROS_DOMAIN_ID and discovery settings from the environment).
It publishes critical-phase `vla/output`s (random tokens, tiny reference chunks) to the actor, answering each of the
actor's chunks with the next request, and exits 0 once the actor acts with weights version >= 2 from the learner,
which it can only have received over DDS; 1 on timeout or if the versions the actor uses
ever decrease. Prints one line per milestone for the test log.
"""

import sys
import time

import numpy as np
import rclpy
from rclpy.node import Node
from rlt_msgs.msg import ActionChunk, PolicyWeights, VlaOutput

from rlt.types import ActionChunk as Chunk
from rlt.types import ChunkRequest, Phase, Source
from rlt.types import VlaOutput as Output
from rlt_nodes import convert, qos

AXES = ("dx", "dy", "dz", "dyaw")


def main() -> int:
    deadline = time.monotonic() + float(sys.argv[1])
    rclpy.init()
    node = Node("fake_vla_driver")
    chunks: list[Chunk] = []
    versions: list[int] = []
    node.create_subscription(
        ActionChunk, "action_chunk", lambda m: chunks.append(convert.chunk_from_msg(m)), qos.CONTROL
    )
    node.create_subscription(PolicyWeights, "rl/actor_weights", lambda m: versions.append(m.version), qos.LATCHED)
    pub = node.create_publisher(VlaOutput, "vla/output", qos.VLA_OUTPUT)

    def spin_until(condition, what: str) -> bool:
        while not condition():
            if time.monotonic() > deadline:
                print(f"timeout waiting for {what}; weights seen {versions[-3:]}", flush=True)
                return False
            rclpy.spin_once(node, timeout_sec=0.05)
        return True

    if not spin_until(lambda: pub.get_subscription_count() > 0, "the actor"):
        return 1
    print("actor matched", flush=True)
    rng = np.random.default_rng(0)
    stamp = 0
    for episode in range(1000):
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
            n = len(chunks)
            pub.publish(
                convert.vla_output_to_msg(Output(request, ref, rng.normal(size=8), rng.normal(size=12), "f", stamp))
            )
            if request.need_chunk and not spin_until(lambda n=n: len(chunks) > n, f"chunk {episode}/{step}"):
                return 1
        used = [c.policy_version for c in chunks if c.source == Source.ACTOR]
        if used != sorted(used):
            print(f"the actor's weight versions went back: {used}", flush=True)
            return 1
        if used and used[-1] >= 2:
            print(f"actor acts with learned weights v{used[-1]} after {episode + 1} episodes", flush=True)
            return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
