"""ROS layer tests need the built workspace; with RLT_REQUIRE_ROS=1 (make test, CI) its absence is an error."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator

import pytest

if importlib.util.find_spec("rlt_msgs") is None:
    if os.environ.get("RLT_REQUIRE_ROS") == "1":
        raise RuntimeError("rlt_msgs is not importable: run `bash ros_ws/setup.sh && source ros_ws/env.sh`")
    pytest.skip("ROS workspace not sourced (source ros_ws/env.sh)", allow_module_level=True)

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node


class RosHarness:
    """An rclpy context on a private domain, with helpers to spin until a condition holds."""

    def __init__(self, domain: int) -> None:
        self.domain = domain
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.nodes: list[Node] = []

    def node(self, name: str, **kwargs: object) -> Node:
        node = Node(name, context=self.context, **kwargs)
        self.executor.add_node(node)
        self.nodes.append(node)
        return node

    def spin_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        import time

        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            self.executor.spin_once(timeout_sec=0.05)

    def env(self) -> dict[str, str]:
        """Environment for a child process on the same private domain."""
        return {**os.environ, "ROS_DOMAIN_ID": str(self.domain), "PYTHONUNBUFFERED": "1"}

    def close(self) -> None:
        for node in self.nodes:
            node.destroy_node()
        self.executor.shutdown()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def ros(ros_domain: int) -> Iterator[RosHarness]:
    harness = RosHarness(ros_domain)
    try:
        yield harness
    finally:
        harness.close()


class NodeProcess:
    """A node executable of rlt_nodes started as its own process on the harness's domain."""

    def __init__(self, harness: RosHarness, executable: str, params: dict[str, object], name: str = "") -> None:
        import subprocess
        import tempfile

        from rlt.launch import find_executable

        self.log = tempfile.NamedTemporaryFile("w+", prefix=f"{executable}_", suffix=".log", delete=False)  # noqa: SIM115
        cmd = [str(find_executable(executable)), "--ros-args", "-r", f"__node:={name or executable}"]
        for key, value in params.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            cmd += ["-p", f"{key}:={text}"]
        self.proc = subprocess.Popen(cmd, env=harness.env(), stdout=self.log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def stop(self) -> int:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except Exception:
                self.proc.kill()
        return self.proc.wait()


@pytest.fixture
def spawn(ros: RosHarness) -> Iterator[Callable[..., NodeProcess]]:
    procs: list[NodeProcess] = []

    def start(executable: str, params: dict[str, object] | None = None, name: str = "") -> NodeProcess:
        procs.append(NodeProcess(ros, executable, params or {}, name))
        return procs[-1]

    yield start
    for p in procs:
        p.stop()


@pytest.fixture
def tiny_rl_params() -> dict[str, object]:
    """RL parameters of actor and learner for process tests: tiny nets, learning after 4 transitions."""
    return {
        "rl.token_dim": 8,
        "rl.hidden": "[32, 32]",
        "rl.learning_starts": 4,
        "rl.batch_size": 4,
        "rl.weights_every": 5,
        "rl.warmup_episodes": 0,
        "rl.buffer_capacity": 200,
        "rl.num_threads": 1,
    }
