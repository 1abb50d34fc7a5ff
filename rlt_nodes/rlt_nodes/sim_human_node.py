"""sim_human: the scripted human of the sim; follows `sim/state` and `episode/events`, publishes `joy`.

It holds the dead-man and moves the sticks like a person with a gamepad would (see rlt.sim.human), so the teleop
node, the actor and the learner see exactly what a real intervention produces. Each Joy carries the stamp of the
state it answers (sim time).
"""

from __future__ import annotations

from rclpy.node import Node
from rlt_msgs.msg import EpisodeEvent, SimState
from sensor_msgs.msg import Joy

from rlt.sim.config import SimConfig
from rlt.sim.human import ScriptedHuman, ScriptedHumanConfig
from rlt.teleop.teleop import load_mapping
from rlt.types import Joy as JoyState
from rlt_nodes import convert, qos
from rlt_nodes.boundary import subscribe
from rlt_nodes.params import declare_config
from rlt_nodes.runner import run_node
from rlt_nodes.teleop_node import MappingConfig


class SimHumanNode(Node):
    """Thin wrapper: sim/state -> ScriptedHuman.on_state -> joy."""

    def __init__(self) -> None:
        super().__init__("sim_human")
        sim = declare_config(self, SimConfig, "sim")
        cfg = declare_config(self, ScriptedHumanConfig, "human")
        mapping = load_mapping(declare_config(self, MappingConfig).mapping)  # the teleop node's mapping
        self.human = ScriptedHuman(sim, cfg, mapping)
        self.pub = self.create_publisher(Joy, "joy", qos.JOY)
        subscribe(self, EpisodeEvent, "episode/events", self.on_event, qos.EVENTS)
        subscribe(self, SimState, "sim/state", self.on_state, qos.LOCKSTEP)
        when = (f"{cfg.start_step} steps after the hand-off" if cfg.trigger == "schedule" else
                f"once the peg stalls ({cfg.stall_steps} steps less than {cfg.stall_distance * 1e3:.1f} mm lower)")
        self.get_logger().info(
            f"intervening in episodes with id % {cfg.every} == {cfg.offset}, {when}, for "
            f"{cfg.duration_steps or 'all remaining'} steps ({mapping.device} mapping)"
        )

    def on_event(self, msg: EpisodeEvent) -> None:
        self.human.on_event(convert.event_from_msg(msg))

    def on_state(self, msg: SimState) -> None:
        state = convert.sim_state_from_msg(msg)
        axes, buttons = self.human.on_state(state)
        self.pub.publish(convert.joy_to_msg(JoyState(axes, tuple(buttons), state.stamp_ns, frame_id="sim_human")))

    def destroy_node(self) -> None:
        if hasattr(self, "human"):
            self.human.close()
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    return run_node(SimHumanNode, argv)
