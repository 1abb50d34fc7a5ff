"""learner: twin-Q critic + actor updated in a background thread from the `rl/transitions` replay topic.

Every `rl.weights_every` updates it publishes the actor on `rl/actor_weights` (reliable + transient local, so a
late actor gets the latest). With `checkpoint_dir` set it journals every transition it receives there before the
transition counts, saves actor, critics, optimizers and the replay buffer every `checkpoint_every_s` seconds and at
shutdown (plus the latest published actor snapshot as `actor_weights.npz`, what evaluation runs load), and at
startup resumes from the last checkpoint and the journal after it: a SIGKILL loses nothing it had received, and
its weight versions continue after the last one published. What it missed while it was down, the actor's
`rl/transitions` history re-delivers (transient local, `qos.REPLAY` depth); re-delivered ones are dropped.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time

from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rlt_msgs.msg import PolicyWeights, Transition

from rlt.config import Config
from rlt.diagnostics import Health
from rlt.rl.learner import Learner
from rlt.rl.weights_file import save_weights
from rlt.types import PolicyWeights as Weights
from rlt_nodes import convert, qos
from rlt_nodes.boundary import subscribe
from rlt_nodes.diagnostics import publish_diagnostics
from rlt_nodes.params import declare_config, declare_rl_config
from rlt_nodes.runner import finish, run_node


@dataclasses.dataclass(frozen=True)
class LearnerNodeConfig(Config):
    """The learner node's own parameters (unprefixed); the learning itself is `rl.*` (RLConfig)."""

    checkpoint_dir: str = ""  # directory of the checkpoint + transition journal, resumed at startup; "" = none kept
    checkpoint_every_s: float = 60.0  # s of wall time between checkpoints (also saved at shutdown)

    def validate(self) -> None:
        self.require_positive("checkpoint_every_s")


class LearnerNode(Node):
    """Thin wrapper: subscription -> Learner.add; Learner.run in a thread; snapshots -> publish."""

    def __init__(self) -> None:
        super().__init__("learner")
        self.learner = Learner(declare_rl_config(self))
        node_cfg = declare_config(self, LearnerNodeConfig)
        self.checkpoint_dir = node_cfg.checkpoint_dir
        self.checkpoint_every = node_cfg.checkpoint_every_s
        if self.checkpoint_dir:  # checkpoint + journal: everything received before a stop or a SIGKILL, once
            summary = self.learner.resume(self.checkpoint_dir)
            self.get_logger().info(f"resumed from {self.checkpoint_dir}: {summary}; {self.learner.updates} updates, "
                                   f"{len(self.learner.buffer)} transitions")
        else:  # nothing persists: versions start above any an earlier process could have published (µs since epoch)
            self.learner.start_versions_after(time.time_ns() // 1000)
        self.latest: Weights | None = None
        self.pub = self.create_publisher(PolicyWeights, "rl/actor_weights", qos.LATCHED)
        subscribe(self, Transition, "rl/transitions", self.on_transition, qos.REPLAY)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.learner.run, args=(self.stop, self.publish_weights), daemon=True)
        self.thread.start()
        self.started_at = time.monotonic()
        steady = Clock(clock_type=ClockType.STEADY_TIME)  # wall time, not sim time
        self.create_timer(5.0, self.report, clock=steady)
        self.health = Health()  # updates/s over the last second, replay size, the newest snapshot's learner step
        self.rate_from = (time.monotonic(), self.learner.updates)
        self.create_timer(1.0, self.gauges, clock=steady)
        publish_diagnostics(self, self.health)
        if self.checkpoint_dir:
            self.create_timer(self.checkpoint_every, self.save, clock=steady)

    def on_transition(self, msg: Transition) -> None:
        transition = convert.transition_from_msg(msg)
        try:
            self.learner.add(transition)
        except OSError as exc:  # the journal cannot be written: end, so the respawned learner gets it re-delivered
            self.get_logger().fatal(f"journal write failed ({exc}): exiting for a respawn")
            finish(self, 1)

    def publish_weights(self, learner_step: int, arrays: dict) -> None:
        version, now = self.learner.next_weights_version(), self.get_clock().now().nanoseconds
        weights = Weights(version, arrays, learner_step, self.learner.architecture(), now)
        self.pub.publish(convert.weights_to_msg(weights))
        self.latest = weights

    def gauges(self) -> None:
        now, updates = time.monotonic(), self.learner.updates
        then, before = self.rate_from
        self.rate_from = (now, updates)
        latest = self.latest.learner_step if self.latest is not None else 0
        self.health.gauges |= {"updates": updates, "updates_per_s": (updates - before) / max(now - then, 1e-9),
                               "replay_size": len(self.learner.buffer), "weights_version": self.learner.weights_version,
                               "weights_learner_step": latest}
        q = self.learner.stats().get("q")  # mean Q over the batch of the latest update that kept its losses
        if q is not None:  # critic_q_mean: what the Foxglove bridge shows on rl/critic
            self.health.gauges["critic_q_mean"] = q

    def report(self) -> None:
        stats = self.learner.stats()
        self.get_logger().info(
            f"{len(self.learner.buffer)} transitions, {self.learner.updates} updates, weights "
            f"v{self.learner.weights_version}, {self.learner.duplicates} re-delivered dropped, "
            + ", ".join(f"{k} {v:.3g}" for k, v in stats.items())
        )

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

    def destroy_node(self) -> None:
        if not hasattr(self, "thread"):  # the constructor failed (e.g. an incompatible checkpoint): nothing to save
            return super().destroy_node()
        self.stop.set()
        self.thread.join(timeout=10)
        if self.checkpoint_dir:
            self.save()
        self.learner.close()
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    return run_node(LearnerNode, argv)
