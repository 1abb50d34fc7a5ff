"""Shared fixtures: a private ROS_DOMAIN_ID per test (held by a file lock, so parallel runs never cross)."""

from __future__ import annotations

import fcntl
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

LOCK_DIR = Path(os.environ.get("RLT_DOMAIN_LOCK_DIR", "/tmp/rlt_ros_domains"))


@pytest.fixture
def ros_domain() -> Iterator[int]:
    """A ROS_DOMAIN_ID in 1..200 that no other test on this machine holds right now."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    candidates = list(range(1, 201))
    random.shuffle(candidates)
    for domain in candidates:
        fd = os.open(LOCK_DIR / f"{domain}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield domain
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return
    raise RuntimeError(f"no free ROS_DOMAIN_ID in 1..200 (locks in {LOCK_DIR})")
