"""learner: twin-Q critic + actor updated in a background thread from the `rl/transitions` replay topic.

Every `rl.weights_every` updates it publishes the actor on `rl/actor_weights` (reliable + transient local, so a
late actor gets the latest). With `checkpoint_dir` set it resumes from the last checkpoint there at startup and
saves actor, critics, optimizers and the replay buffer every `checkpoint_every_s` seconds and at shutdown, plus
the latest published actor snapshot as `actor_weights.npz` (what evaluation runs load).
"""

from __future__ import annotations

import json
import threading
import time

from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rlt_msgs.msg import PolicyWeights, Transition

from rlt.rl.learner import Learner
from rlt.rl.weights_file import save_weights
from rlt.types import PolicyWeights as Weights
from rlt_nodes import convert, qos
from rlt_nodes.boundary import subscribe
from rlt_nodes.params import declare, declare_rl_config
from rlt_nodes.runner import run_node


class LearnerNode(Node):
    """Thin wrapper: subscription -> Learner.add; Learner.run in a thread; snapshots -> publish."""

    def __init__(self) -> None:
        super().__init__("learner")
        self.learner = Learner(declare_rl_config(self))
        self.checkpoint_dir = declare(self, "checkpoint_dir", "")
        self.checkpoint_every = declare(self, "checkpoint_every_s", 60.0)
        if self.checkpoint_dir:
            try:
                path = self.learner.load_checkpoint(self.checkpoint_dir)
                self.get_logger().info(
                    f"resumed from {path}: {self.learner.updates} updates, {len(self.learner.buffer)} transitions"
                )
            except FileNotFoundError:
                self.get_logger().info(f"no checkpoint in {self.checkpoint_dir} yet: starting fresh")
        self.version = 0
        self.latest: Weights | None = None
        self.pub = self.create_publisher(PolicyWeights, "rl/actor_weights", qos.LATCHED)
        subscribe(self, Transition, "rl/transitions", self.on_transition, qos.REPLAY)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.learner.run, args=(self.stop, self.publish_weights), daemon=True)
        self.thread.start()
        self.saved_at = self.started_at = time.monotonic()
        self.create_timer(5.0, self.report, clock=Clock(clock_type=ClockType.STEADY_TIME))  # wall time, not sim

    def on_transition(self, msg: Transition) -> None:
        self.learner.add(convert.transition_from_msg(msg))

    def publish_weights(self, learner_step: int, arrays: dict) -> None:
        self.version += 1
        weights = Weights(
            self.version, arrays, learner_step, self.learner.architecture(), self.get_clock().now().nanoseconds
        )
        self.pub.publish(convert.weights_to_msg(weights))
        self.latest = weights

    def report(self) -> None:
        stats = self.learner.stats()
        self.get_logger().info(
            f"{len(self.learner.buffer)} transitions, {self.learner.updates} updates, weights v{self.version}, "
            + ", ".join(f"{k} {v:.3g}" for k, v in stats.items())
        )
        if self.checkpoint_dir and time.monotonic() - self.saved_at > self.checkpoint_every:
            self.save()

    def save(self) -> None:
        self.learner.save_checkpoint(self.checkpoint_dir)
        busy = time.monotonic() - self.started_at
        stats = {
            "updates": self.learner.updates,
            "transitions": self.learner.buffer.added,
            "wall_s": busy,
            "updates_per_s": self.learner.updates / busy if busy else 0.0,
        }
        with open(f"{self.checkpoint_dir}/stats.json", "w") as f:
            json.dump(stats, f)
        if self.latest is not None:
            save_weights(f"{self.checkpoint_dir}/actor_weights.npz", self.latest)
        self.saved_at = time.monotonic()

    def destroy_node(self) -> None:
        if not hasattr(self, "thread"):  # the constructor failed (e.g. an incompatible checkpoint): nothing to save
            return super().destroy_node()
        self.stop.set()
        self.thread.join(timeout=10)
        if self.checkpoint_dir:
            self.save()
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    return run_node(LearnerNode, argv)
