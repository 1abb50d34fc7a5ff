"""Subscription callbacks as boundaries: what one node does with a message another process got wrong.

Every node subscribes through `subscribe`: a message that fails conversion or validation, or whose handling raises
inside the core, is dropped, and the node keeps running. No process exits because of what another one sent. Drops
are logged per topic and kind of fault (`drop_kind`) and rate-limited: the first at once, then at most one line per
`window_s`, carrying the count of drops since the previous line, so a peer that floods garbage cannot flood the log.
"""

from __future__ import annotations

import re
import time
import traceback
from collections.abc import Callable
from typing import Any

from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.subscription import Subscription

LOG_WINDOW_S = 10.0  # s between two log lines about the same topic: one line per burst of bad messages


def drop_kind(exc: Exception) -> str:
    """What was wrong, for rate-limiting: the exception type and its message with the numbers masked (the field
    and the rule broken, not the values), so each kind of bad message on a topic gets its own line."""
    return f"{type(exc).__name__}:{re.sub(r'[0-9]+', '#', str(exc))[:120]}"


class DropLog:
    """Counts the messages dropped on one topic for one kind of fault and logs them rate-limited (module docstring)."""

    def __init__(self, node: Node, topic: str, window_s: float = LOG_WINDOW_S) -> None:
        self.node, self.topic, self.window_s = node, topic, window_s
        self.total = 0  # messages of this kind dropped on this topic since the node started
        self._unlogged = 0
        self._logged_at = -float("inf")
        self._traced = False  # the traceback of a bug (not bad input) is logged once

    def drop(self, exc: Exception) -> None:
        self.total += 1
        self._unlogged += 1
        now = time.monotonic()
        if now - self._logged_at < self.window_s:
            return
        kind = type(exc).__name__
        since = f", {self._unlogged} since the last report" if self.total > 1 else ""
        self.node.get_logger().error(
            f"dropped a message on {self.node.resolve_topic_name(self.topic)} ({self.total} dropped{since}): "
            f"{kind}: {exc}"
        )
        if not isinstance(exc, ValueError) and not self._traced:  # a bug in the handling, not bad input
            self._traced = True
            self.node.get_logger().error("".join(traceback.format_exception(exc)).rstrip())
        self._unlogged, self._logged_at = 0, now


def guarded(node: Node, topic: str, callback: Callable[[Any], None]) -> Callable[[Any], None]:
    """`callback` with every exception turned into a logged, counted drop (the node's `drops[(topic, kind)]`)."""
    drops = getattr(node, "drops", None)
    if drops is None:
        drops = node.drops = {}

    def boundary(msg: Any) -> None:
        try:
            callback(msg)
        except Exception as exc:  # the point of a boundary: nothing a peer sends ends this process
            if node.context.ok():  # else the process is shutting down under the callback (a publish on a closed
                key = (topic, drop_kind(exc))  # context): nothing was wrong with the message
                drops.setdefault(key, DropLog(node, topic)).drop(exc)

    return boundary


def subscribe(node: Node, msg_type: type, topic: str, callback: Callable[[Any], None], qos: QoSProfile) -> Subscription:
    """`node.create_subscription` with `callback` behind the boundary (see `guarded`)."""
    return node.create_subscription(msg_type, topic, guarded(node, topic, callback), qos)
