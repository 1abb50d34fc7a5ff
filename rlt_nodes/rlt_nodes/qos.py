"""QoS profiles of every topic of the stack, in one place (see the README's topic table), and the conversion of
offered QoS to and from what a bag stores (`rlt.bags.io.TopicQos`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from rclpy.topic_endpoint_info import TopicEndpointInfo

if TYPE_CHECKING:  # rlt.bags.io loads rosbags: only the recorder and the player need it
    from rlt.bags.io import TopicQos

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
# joy: reliable like the ROS joy / joy_linux nodes publish it (a best-effort subscriber could miss a button release)
JOY = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
# replayed and recorded topics: deep enough that a burst (a chunk of sim steps) never overflows a reader's history
RECORD_DEPTH = 1000


def recording(topic_qos: TopicQos) -> QoSProfile:
    """The recorder's subscription to a topic offered with `topic_qos`: compatible, deep (a burst of sim steps never
    overflows its history), transient-local when the publishers are, so a recorder started late gets what they kept."""
    return _profile(topic_qos, max(topic_qos.depth, RECORD_DEPTH))


def replaying(topic_qos: TopicQos) -> QoSProfile:
    """The player's publisher of a topic recorded with `topic_qos`: the same reliability and durability; the recorded
    depth for transient-local topics (what a late joiner gets), a deep history otherwise."""
    return _profile(topic_qos, topic_qos.depth if topic_qos.transient_local else max(topic_qos.depth, RECORD_DEPTH))


def _profile(topic_qos: TopicQos, depth: int) -> QoSProfile:
    return QoSProfile(
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE if topic_qos.reliable else ReliabilityPolicy.BEST_EFFORT,
        history=HistoryPolicy.KEEP_LAST,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if topic_qos.transient_local else DurabilityPolicy.VOLATILE,
    )


def offered(infos: Sequence[TopicEndpointInfo]) -> TopicQos:
    """What the publishers of a topic offer, as a bag stores it: reliable / transient-local only if all are."""
    from rlt.bags.io import TopicQos

    profiles = [i.qos_profile for i in infos]
    if not profiles:
        return TopicQos()
    return TopicQos(
        reliable=all(p.reliability == ReliabilityPolicy.RELIABLE for p in profiles),
        transient_local=all(p.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in profiles),
        depth=max(max(p.depth for p in profiles), 1),
    )

