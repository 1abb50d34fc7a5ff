"""joystick: a real gamepad on Linux (kernel evdev interface, python-evdev) published as `joy` (sensor_msgs/Joy).

Axes and buttons follow the ROS `joy_linux` node's order and signs, so the same per-device mapping serves both; it
publishes on every change and repeats the state at joystick.autorepeat_hz. A gamepad that cannot be found stops the
node at startup; one lost while running (unplugged) is published as released (no dead-man, no deflection) and
reopened every joystick.reconnect_s. Device handling is in rlt.teleop.joystick.
"""

from __future__ import annotations

import time

from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import Joy

from rlt.teleop.joystick import DeviceLost, Gamepad, JoystickConfig, open_gamepad
from rlt.types import Joy as JoyState
from rlt_nodes import convert, qos
from rlt_nodes.params import declare_config
from rlt_nodes.runner import run_node


class JoystickNode(Node):
    """Thin wrapper: Gamepad.poll on a timer -> Joy."""

    def __init__(self) -> None:
        super().__init__("joystick")
        self.cfg = declare_config(self, JoystickConfig, "joystick")
        self.pad: Gamepad | None = open_gamepad(self.cfg)
        self.layout = self.pad.layout
        self.pub = self.create_publisher(Joy, "joy", qos.JOY)
        self.published_at = 0.0
        self.lost_at = 0.0
        self.create_timer(1.0 / self.cfg.poll_hz, self.poll, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(
            f"{self.pad.name} at {self.pad.path}: {len(self.layout.axes)} axes, {len(self.layout.buttons)} buttons"
        )
        self.publish(self.pad.state.axes, self.pad.state.buttons)

    def poll(self) -> None:
        now = time.monotonic()
        if self.pad is None:
            if now - self.lost_at >= self.cfg.reconnect_s:
                self.reconnect(now)
            return
        try:
            changed = self.pad.poll()
        except DeviceLost as exc:
            self.get_logger().error(f"gamepad lost: {exc}; publishing it released and reconnecting")
            self.pad.close()
            self.pad, self.lost_at = None, now
            self.publish([0.0] * len(self.layout.axes), [0] * len(self.layout.buttons))
            return
        repeat = self.cfg.autorepeat_hz and now - self.published_at >= 1.0 / self.cfg.autorepeat_hz
        if changed or repeat:
            self.publish(self.pad.state.axes, self.pad.state.buttons)

    def reconnect(self, now: float) -> None:
        self.lost_at = now
        try:
            self.pad = open_gamepad(self.cfg)
        except OSError:
            return
        self.layout = self.pad.layout
        self.get_logger().info(f"gamepad back: {self.pad.name} at {self.pad.path}")

    def publish(self, axes: list[float], buttons: list[int]) -> None:
        stamp = self.get_clock().now().nanoseconds
        self.pub.publish(convert.joy_to_msg(JoyState(axes, tuple(buttons), stamp, frame_id="joy")))
        self.published_at = time.monotonic()

    def destroy_node(self) -> None:
        if getattr(self, "pad", None) is not None:
            self.pad.close()
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    return run_node(JoystickNode, argv)
