"""ROS layer tests need the built workspace; with RLT_REQUIRE_ROS=1 (make test, CI) its absence is an error."""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

if importlib.util.find_spec("rlt_msgs") is None:
    if os.environ.get("RLT_REQUIRE_ROS") == "1":
        raise RuntimeError("rlt_msgs is not importable: run `bash ros_ws/setup.sh && source ros_ws/env.sh`")
    pytest.skip("ROS workspace not sourced (source ros_ws/env.sh)", allow_module_level=True)

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from rlt.app.launch import STACK_DUMP_SIGNAL


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

    def spin_until(self, condition: Callable[[], bool], timeout: float, what: str | Callable[[], str]) -> None:
        """Spin until `condition()`; TimeoutError with `what` (a callable is called then, e.g. to read logs)."""
        import time

        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what() if callable(what) else what}")
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

        from rlt.app.launch import find_executable

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

    def stacks(self) -> str:
        """The output with every thread's stack appended (rlt_nodes.runner's faulthandler): where a silent node is."""
        if self.proc.poll() is None:
            self.proc.send_signal(STACK_DUMP_SIGNAL)
            time.sleep(0.5)
        return self.output()

    def stop(self) -> int:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except Exception:
                self.proc.send_signal(STACK_DUMP_SIGNAL)  # where it hung, into its log (rlt_nodes.runner)
                time.sleep(1.0)
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


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real exported VLA + RL token (untrained, 16 px, H = 6, the sim's cameras and proprio) for launched sessions:
    the nodes load it through the same ONNX path as artifacts/vla.onnx."""
    import torch

    from rlt.models.export import export_onnx
    from rlt.models.testing import write_tiny_checkpoints

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("tiny_model")
    write_tiny_checkpoints(root, proprio_mean=0.0, proprio_std=0.05)  # the sim's proprio scale
    return export_onnx(root / "vla.pt", root / "token.pt", root / "vla.onnx").path


TINY_RL = {"hidden": [32, 32], "learning_starts": 4, "batch_size": 4, "weights_every": 5, "warmup_episodes": 0,
           "num_threads": 1}


class LaunchedSession:
    """`rlt launch <session>` as a user runs it, on the harness's domain, with launch/config/sim.yaml made tiny:
    the tiny model (16 px), tiny RL nets, episodes that start at the hand-off. `params` are merged over that,
    {node: {"a.b": value}}."""

    def __init__(self, harness: RosHarness, tmp: Path, model: Path, session: str = "sim",
                 params: dict[str, dict[str, object]] | None = None, sets: tuple[str, ...] = ()) -> None:
        import subprocess
        import sys

        import yaml

        from rlt.app.launch import LAUNCH_DIR

        base = yaml.safe_load((LAUNCH_DIR / "config" / "sim.yaml").read_text())
        shared = base["/**"]["ros__parameters"]
        shared["model_path"] = str(model)
        shared["sim"]["image_size"] = 16
        shared["rl"].update(TINY_RL)
        base["sim_driver"]["ros__parameters"]["driver"]["mode"] = "critical"
        base.setdefault("vla", {}).setdefault("ros__parameters", {})["image_size"] = 16
        for node, values in (params or {}).items():
            for dotted, value in values.items():
                *path, leaf = dotted.split(".")
                target = base.setdefault(node, {}).setdefault("ros__parameters", {})
                for part in path:
                    target = target.setdefault(part, {})
                target[leaf] = value
        self.params_file = tmp / f"{session}_params.yaml"
        self.params_file.write_text(yaml.safe_dump(base, sort_keys=False))
        self.log_dir = tmp / "logs"
        self.out = open(tmp / "launch.log", "w+")  # noqa: SIM115
        cmd = [sys.executable, "-m", "rlt.cli", "launch", session, "--params-file", str(self.params_file),
               "--log-dir", str(self.log_dir), *(a for item in sets for a in ("--set", item))]
        self.proc = subprocess.Popen(cmd, env=harness.env(), stdout=self.out, stderr=subprocess.STDOUT)

    def log(self, node: str) -> str:
        path = self.log_dir / f"{node}.log"
        return path.read_text(errors="replace") if path.is_file() else ""

    def output(self) -> str:
        self.out.flush()
        return Path(self.out.name).read_text(errors="replace")

    def pid(self, node: str) -> int | None:
        """The running process of `node` (a child of the launcher), or None."""
        for child in Path(f"/proc/{self.proc.pid}/task").glob("*/children"):
            for pid in child.read_text().split():
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                except FileNotFoundError:
                    continue
                if f"__node:={node}".encode() in cmdline:
                    return int(pid)
        return None

    def everything(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.log_dir.glob("*.log"))) + f"\n--- launch\n{self.output()}"

    def stacks(self) -> str:
        """The output with every thread's stack appended (rlt_nodes.runner's faulthandler): where a silent node is."""
        if self.proc.poll() is None:
            self.proc.send_signal(STACK_DUMP_SIGNAL)
            time.sleep(0.5)
        return self.output()

    def stop(self) -> int:
        import signal
        import subprocess

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


@pytest.fixture
def launch_session(ros: RosHarness, tmp_path: Path, tiny_model: Path) -> Iterator[Callable[..., LaunchedSession]]:
    sessions: list[LaunchedSession] = []

    def start(session: str = "sim", params: dict[str, dict[str, object]] | None = None,
              sets: tuple[str, ...] = ()) -> LaunchedSession:
        sessions.append(LaunchedSession(ros, tmp_path, tiny_model, session, params, sets))
        return sessions[-1]

    yield start
    for s in sessions:
        s.stop()
