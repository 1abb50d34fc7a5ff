"""QoS profiles of every topic of the stack, in one place (see the README's topic table)."""

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

SENSOR = qos_profile_sensor_data  # camera images, joystick: best effort, keep last 5
# lockstep sim: images and joint states are reliable and transient-local with a history of a few chunks, so the
# VLA never misses the frame of a request, even one published before discovery between two nodes completed
LOCKSTEP = QoSProfile(
    depth=50,
    reliability=ReliabilityPolicy.RELIABLE,
    history=HistoryPolicy.KEEP_LAST,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
STATE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)  # joint_states on a robot, /clock
CONTROL = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)  # requests, chunks
# vla/output: kept for late joiners, so an actor whose subscription matched after the first pass still gets it
VLA_OUTPUT = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# rl/transitions: never drop a sample, also not those sent before a (slow-starting) learner matched
REPLAY = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
EVENTS = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
