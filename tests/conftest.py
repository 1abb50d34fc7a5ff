"""Shared fixtures: a private ROS_DOMAIN_ID per test (held by a file lock, so parallel runs never cross)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rlt.launch import private_domain


@pytest.fixture
def ros_domain() -> Iterator[int]:
    """A ROS_DOMAIN_ID in 1..200 that no other test or session on this machine holds right now (also set in the
    environment for the test's duration)."""
    with private_domain() as domain:
        yield domain
