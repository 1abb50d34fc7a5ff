"""QoS profiles of every topic of the stack, in one place (see the README's topic table)."""

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

SENSOR = qos_profile_sensor_data  # camera images, joystick: best effort, keep last 5
# images in the lockstep sim: reliable and deep enough for a chunk of frames, so the VLA never misses its frame
SIM_IMAGES = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
STATE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)  # joint_states, sim/state, clock
CONTROL = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)  # requests, VLA outputs, chunks
REPLAY = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)  # rl/transitions: never drop a sample
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
EVENTS = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
