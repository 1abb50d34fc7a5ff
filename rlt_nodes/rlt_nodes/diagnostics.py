"""Publishes a node's `rlt.diagnostics.Health` on `/diagnostics` once a second (diagnostic_msgs/DiagnosticArray).

`/diagnostics` is the standard ROS topic for it: `rqt_robot_monitor`, Foxglove and `ros2 topic echo` read it, and
`rlt bench realtime` collects it. One DiagnosticStatus per node, named by its fully qualified name; level WARN
while `health.warning` says what is wrong, else OK. The period runs on the steady clock, so a node under sim time
reports too.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import QoSProfile

from rlt.diagnostics import DiagnosticsConfig, Health
from rlt_nodes.params import declare_config

TOPIC = "/diagnostics"  # absolute: the one standard topic every monitor reads
PERIOD_S = 1.0  # s between two reports


def status_of(name: str, health: Health) -> DiagnosticStatus:
    """The DiagnosticStatus of `health` for the node `name`."""
    level = DiagnosticStatus.WARN if health.warning else DiagnosticStatus.OK
    values = [KeyValue(key=k, value=v) for k, v in health.snapshot().items()]
    return DiagnosticStatus(level=level, name=name, message=health.warning or "OK", hardware_id=socket.gethostname(),
                            values=values)


def level_of(status: DiagnosticStatus) -> int:
    """A status's level as an int (the `byte` field is bytes of length 1 in rclpy)."""
    return int.from_bytes(status.level, "little") if isinstance(status.level, bytes) else int(status.level)


def publish_diagnostics(node: Node, health: Health) -> None:
    """Report `health` on /diagnostics every PERIOD_S s of the steady clock, stamped with the node's clock; with
    the node's `diagnostics.dump_dir` set, also write it there (`<node name>.json`, replaced atomically)."""
    cfg = declare_config(node, DiagnosticsConfig, "diagnostics")
    health.window = cfg.window
    pub = node.create_publisher(DiagnosticArray, TOPIC, QoSProfile(depth=10))
    dump = Path(cfg.dump_dir) / f"{node.get_name()}.json" if cfg.dump_dir else None
    if dump is not None:
        dump.parent.mkdir(parents=True, exist_ok=True)

    def report() -> None:
        status = status_of(node.get_fully_qualified_name(), health)
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = node.get_clock().now().to_msg()
        pub.publish(msg)
        if dump is not None:
            values = {kv.key: kv.value for kv in status.values}
            text = json.dumps({"name": status.name, "level": level_of(status),
                               "message": status.message, "values": values})
            dump.with_suffix(".tmp").write_text(text)
            dump.with_suffix(".tmp").replace(dump)

    node.create_timer(PERIOD_S, report, clock=Clock(clock_type=ClockType.STEADY_TIME))
