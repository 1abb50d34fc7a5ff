"""Sessions: which nodes run with which parameters, and a process supervisor that runs them without `ros2 launch`.

`launch/sessions.yaml` is the one source of truth: for each session (sim, robot, replay) it lists the nodes
(executable, name, required, topic remappings), the parameter file (ROS 2 params YAML keyed by node name; or files,
each over the one before, as the rehearsal's hardware over robot.yaml) and the launch arguments with descriptions.
`launch/*.launch.py` builds launch_ros `Node`s from `load_session()`; `rlt launch <session>` builds the same command
lines with `plan()` and runs them as separate processes with `Supervisor`, which forwards Ctrl-C, stops every node
when a required one exits, respawns the others with back-off when they die (as `ros2 launch`'s `respawn`), and
returns non-zero when a node failed at the end. Both add `FOXGLOVE_BRIDGE`, a live view in Foxglove, to any session
on request (`--foxglove`, `foxglove:=true`).
This module is pure Python (no rclpy): it only reads YAML and starts processes.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import fcntl
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import yaml

PACKAGE = "rlt_nodes"
LAUNCH_DIR = Path(__file__).resolve().parents[3] / "launch"


@dataclasses.dataclass(frozen=True)
class NodeSpec:
    """One node of a session."""

    executable: str
    name: str
    required: bool = True  # the session stops when it exits; a node that is not is respawned when it dies
    threads: int = 0  # 0 = leave the process's thread counts alone; else OMP/torch threads for this node
    remap: tuple[tuple[str, str], ...] = ()  # topic remappings (from, to), e.g. a shadow actor's outputs
    params: tuple[tuple[str, object], ...] = ()  # this session's parameters of the node, over the params file's


# the optional live view of any session (rlt_nodes.foxglove_bridge_node); respawned when it dies, as any node not
# required: `rlt launch <session> --foxglove`, `ros2 launch ... foxglove:=true`
FOXGLOVE_BRIDGE = NodeSpec("foxglove_bridge", "foxglove_bridge", required=False)


@dataclasses.dataclass(frozen=True)
class Argument:
    """A launch argument: `rlt launch` flag and `ros2 launch` argument with the same name and default."""

    name: str
    default: str
    description: str


@dataclasses.dataclass(frozen=True)
class Session:
    """A named set of nodes plus their parameter file, over the files of `base_params` (each over the one before)."""

    name: str
    description: str
    params_file: Path
    nodes: tuple[NodeSpec, ...]
    base_params: tuple[Path, ...] = ()  # e.g. the rehearsal's: robot.yaml, under rehearsal.yaml's hardware

    def layers(self, params_file: Path | None = None) -> tuple[Path, ...]:
        """The params files every node reads, the later winning; `params_file` replaces the session's own."""
        return (*self.base_params, params_file or self.params_file)

    def params(self, params_file: Path | None = None) -> dict:
        """The parameters the nodes get from `layers(params_file)`, merged as rcl merges them (node -> values)."""
        merged: dict = {}
        for path in self.layers(params_file):
            with open(path) as f:
                merged = deep_merge(merged, yaml.safe_load(f) or {})
        return merged

    @property
    def arguments(self) -> tuple[Argument, ...]:
        """The launch arguments every session takes (`rlt launch` has a flag of the same name for each)."""
        over = f", over {', '.join(p.name for p in self.base_params)}" if self.base_params else ""
        return (
            Argument("params_file", str(self.params_file),
                     f"ROS 2 params YAML for every node (keyed by node name{over})"),
            Argument("namespace", "", "ROS namespace of every node (one robot per namespace)"),
            Argument("foxglove", "false", "also run foxglove_bridge: a live view in Foxglove (ws://localhost:8765)"),
        )


def load_session(name: str, launch_dir: Path = LAUNCH_DIR) -> Session:
    """Read session `name` from `launch_dir/sessions.yaml`; unknown names list the valid ones."""
    path = launch_dir / "sessions.yaml"
    with open(path) as f:
        sessions = yaml.safe_load(f)
    if name not in sessions:
        raise ValueError(f"unknown session {name!r} in {path}; expected one of {', '.join(sessions)}")
    raw = sessions[name]
    try:
        nodes = tuple(
            NodeSpec(**{**n, "remap": tuple((n.get("remap") or {}).items()),
                        "params": tuple((n.get("params") or {}).items())})
            for n in raw["nodes"]
        )
        *base, params = (launch_dir / p for p in ([raw["params"]] if isinstance(raw["params"], str) else raw["params"]))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: session {name!r} is malformed ({exc}); see the sim session for the format") from exc
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: session {name!r} has duplicate node names {names}")
    for file in (*base, params):
        if not file.is_file():
            raise FileNotFoundError(f"{path}: session {name!r} names params file {file}, which does not exist")
    return Session(name, raw.get("description", ""), params, nodes, tuple(base))


def deep_merge(base: dict, extra: Mapping) -> dict:
    """`base` with `extra` merged in, nested mappings key by key, anything else replaced (a copy)."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        out[key] = deep_merge(out.get(key, {}), value) if isinstance(value, Mapping) else value
    return out


def find_executable(executable: str) -> Path:
    """`<prefix>/lib/rlt_nodes/<executable>` from the first AMENT_PREFIX_PATH entry that has it."""
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    for prefix in prefixes:
        path = Path(prefix) / "lib" / PACKAGE / executable
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"node executable {executable!r} not found under lib/{PACKAGE} of AMENT_PREFIX_PATH={prefixes}; "
        "build and source the workspace: bash ros_ws/setup.sh && source ros_ws/env.sh"
    )


@dataclasses.dataclass(frozen=True)
class Launch:
    """One process to start: the command line ros2 launch would build for the node."""

    node: NodeSpec
    cmd: tuple[str, ...]
    env: Mapping[str, str]


def plan(
    session: Session,
    params_file: Path | None = None,
    overrides: Mapping[str, Mapping[str, str]] | None = None,
    namespace: str = "",
    foxglove: bool = False,
) -> list[Launch]:
    """Command lines for every node: `<exe> --ros-args -r __node:=<name> --params-file <file> -p k:=v...`.

    `params_file` replaces the session's own file, over its `base_params` (like the launch argument of the same
    name); `foxglove` adds
    `FOXGLOVE_BRIDGE` after the session's nodes (like the launch argument `foxglove:=true`).
    """
    overrides = overrides or {}
    nodes = (*session.nodes, FOXGLOVE_BRIDGE) if foxglove else session.nodes
    unknown = sorted(set(overrides) - {n.name for n in nodes})
    if unknown:
        raise ValueError(
            f"overrides for unknown node(s) {unknown}; session {session.name!r} runs {[n.name for n in nodes]}"
        )
    launches = []
    for node in nodes:
        cmd = [str(find_executable(node.executable)), "--ros-args", "-r", f"__node:={node.name}"]
        if namespace:
            cmd += ["-r", f"__ns:={namespace}"]
        for source, target in node.remap:
            cmd += ["-r", f"{source}:={target}"]
        for layer in session.layers(params_file):
            cmd += ["--params-file", str(layer)]
        for key, value in [*((k, param_text(v)) for k, v in node.params), *overrides.get(node.name, {}).items()]:
            # node-scoped: a bare `-p key:=value` loses to the params file's entry under the node's name
            cmd += ["-p", f"{node.name}:{key}:={value}"]
        env = dict(os.environ)
        if node.threads:
            env.update(OMP_NUM_THREADS=str(node.threads), RLT_TORCH_THREADS=str(node.threads))
        launches.append(Launch(node, tuple(cmd), env))
    return launches


class _QuotedDumper(yaml.SafeDumper):
    """Every string quoted: rcl's params parser reads a bare `y` (a joint name) or `on` as a bool."""


_QuotedDumper.add_representer(str, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text,
                                                                                  style="'"))


def write_params(params: Mapping[str, object], path: Path) -> Path:
    """Write a ROS 2 params file (nodes -> ros__parameters -> values) that rcl reads back as written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.dump(params, Dumper=_QuotedDumper, sort_keys=False))
    return path


def param_text(value: object) -> str:
    """A value as `-p name:=<text>` parses it back: true/false, numbers, ['a', 'b'] lists."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(repr(v) if isinstance(v, str) else param_text(v) for v in value) + "]"
    return str(value)


def single(executable: str, name: str, params: Mapping[str, object], namespace: str = "") -> Launch:
    """One node outside any session (e.g. `rlt bag record`): `<exe> --ros-args -r __node:=<name> -p k:=v...`."""
    cmd = [str(find_executable(executable)), "--ros-args", "-r", f"__node:={name}"]
    if namespace:
        cmd += ["-r", f"__ns:={namespace}"]
    for key, value in params.items():
        cmd += ["-p", f"{key}:={param_text(value)}"]
    return Launch(NodeSpec(executable, name), tuple(cmd), dict(os.environ))


RESPAWN_DELAY_S = (0.5, 15.0)  # s: first and longest wait before a respawn; doubles while restarts keep failing
RESPAWN_STABLE_S = 30.0  # s: a node that ran this long before dying is respawned after the first delay again
STARTUP_ERROR = 2  # the exit code of a node whose construction failed (rlt_nodes.runner.run_node)
CLEAN_EXITS = (0, -signal.SIGINT, -signal.SIGTERM)  # a node's exit code after it ended by itself or was stopped
STACK_DUMP_SIGNAL = signal.SIGQUIT  # a node that ignored SIGINT and SIGTERM writes every thread's stack to its log
STACK_DUMP_WAIT_S = 1.0  # s given to that dump before SIGKILL


class Supervisor:
    """Run launches as separate processes; forward SIGINT/SIGTERM; stop all when a required one exits.

    A node that is not required and dies (any exit code but 0) is respawned with back-off, as `ros2 launch` does
    with `respawn=True`: the session goes on, the arm held by the required node meanwhile. Its log continues in the
    same file. `restarts` counts the respawns per node and `deaths` lists (node, exit code) in order. A node that
    fails at its first start (exit 2: a bad parameter or a missing model) stops the session instead, naming why.
    """

    def __init__(
        self,
        launches: Sequence[Launch],
        log_dir: Path | None = None,
        grace_s: float = 10.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.launches = list(launches)
        self.log_dir = log_dir
        self.grace_s = grace_s
        self.log = log or (lambda line: print(f"[supervisor] {line}", file=sys.stderr, flush=True))
        self.procs: dict[str, subprocess.Popen] = {}
        self.returncodes: dict[str, int] = {}
        self.restarts: dict[str, int] = {launch.node.name: 0 for launch in self.launches}
        self.deaths: list[tuple[str, int]] = []
        self._started_at: dict[str, float] = {}
        self._respawn_at: dict[str, float] = {}  # node -> when to start it again
        self._delay: dict[str, float] = {}
        self._respawning_at_stop: set[str] = set()
        self._startup_failure = False  # a node failed at its first start: the session failed
        self.killed: list[str] = []  # nodes that ignored SIGINT and SIGTERM at the stop and got SIGKILL
        self._stop_reason = ""

    def start(self) -> None:
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        for launch in self.launches:
            self._spawn(launch, mode="w")

    def _spawn(self, launch: Launch, mode: str) -> None:
        out = open(self.log_dir / f"{launch.node.name}.log", mode) if self.log_dir else None  # noqa: SIM115
        try:
            self.procs[launch.node.name] = subprocess.Popen(
                launch.cmd,
                env=dict(launch.env),
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
                start_new_session=True,  # our SIGINT reaches them only through stop(), once
            )
        finally:
            if out is not None:
                out.close()  # the child has its own descriptor: a node respawned all day leaks none here
        self._started_at[launch.node.name] = time.monotonic()

    def run(self, timeout_s: float = 0.0) -> int:
        """Start, wait until a required node exits (or timeout / a signal), stop the rest; 0 if all went well."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            deadline = time.monotonic() + timeout_s if timeout_s else float("inf")
            while not self._stop_reason:
                for launch in self.launches:
                    self._check(launch)
                if time.monotonic() > deadline:
                    self._stop_reason = f"timeout after {timeout_s:.0f} s"
                time.sleep(0.05)
        finally:
            self.stop()  # also when starting or respawning raised: no node is left running, the arm's included
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.exit_code()

    def _check(self, launch: Launch) -> None:
        name, now = launch.node.name, time.monotonic()
        if name in self._respawn_at:
            if now >= self._respawn_at[name]:
                del self._respawn_at[name]
                self.restarts[name] += 1
                self._spawn(launch, mode="a")
            return
        if name in self.returncodes:
            return
        code = self.procs[name].poll()
        if code is None:
            return
        if launch.node.required or code == 0:  # a node that ended by itself is not respawned
            self.returncodes[name] = code
            if launch.node.required:
                self._stop_reason = f"{name} exited with {code}"
            return
        self.deaths.append((name, code))
        if code == STARTUP_ERROR and name not in self._delay:
            # failed before it ever ran (a bad parameter, a missing model): the same start fails again, so the
            # session stops with the node's own one-line reason; once it has run, exit 2 is a lost device: respawn
            self._stop_reason = f"{name} failed at startup (exit {code}){self._last_line(name)}"
            self._startup_failure = True
            return
        first, longest = RESPAWN_DELAY_S
        stable = now - self._started_at[name] >= RESPAWN_STABLE_S
        delay = first if stable or name not in self._delay else min(2 * self._delay[name], longest)
        self._delay[name], self._respawn_at[name] = delay, now + delay
        self.log(f"{name} exited with {code}: respawning in {delay:g} s (restart {self.restarts[name] + 1})")

    def _last_line(self, name: str) -> str:
        path = self.log_dir / f"{name}.log" if self.log_dir else None
        lines = path.read_text(errors="replace").strip().splitlines() if path and path.is_file() else []
        return f": {lines[-1]}" if lines else ""

    @property
    def stop_reason(self) -> str:
        return self._stop_reason

    def exit_code(self) -> int:
        failed = {n: c for n, c in self.returncodes.items()
                  if c not in CLEAN_EXITS and n not in self._respawning_at_stop}
        if self._startup_failure:
            return 1
        if self._stop_reason.startswith(("timeout", "signal")):
            return 1 if failed else (130 if self._stop_reason.startswith("signal") else 124)
        return 1 if failed else 0

    def stop(self) -> None:
        """SIGINT every running node, then SIGTERM, each given the grace period; then a stack dump and SIGKILL."""
        # a node that died and waits for its respawn has had its death handled (`deaths`): not a failure at the end
        self._respawning_at_stop |= set(self._respawn_at)
        self._respawn_at.clear()
        for sig in (signal.SIGINT, signal.SIGTERM, STACK_DUMP_SIGNAL, signal.SIGKILL):
            running = {n: p for n, p in self.procs.items() if p.poll() is None}
            if not running:
                break
            if sig == signal.SIGKILL:
                self.killed = sorted(running)
            if sig == STACK_DUMP_SIGNAL:
                self.log(f"{', '.join(sorted(running))} ignored SIGINT and SIGTERM for {2 * self.grace_s:g} s: "
                         f"killing; every thread's stack is in the log")
            for proc in running.values():
                proc.send_signal(sig)
            deadline = time.monotonic() + (STACK_DUMP_WAIT_S if sig == STACK_DUMP_SIGNAL else self.grace_s)
            while time.monotonic() < deadline and any(p.poll() is None for p in running.values()):
                time.sleep(0.05)
        for name, proc in self.procs.items():
            self.returncodes.setdefault(name, proc.wait())

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._stop_reason = f"signal {signal.Signals(signum).name}"


def parse_overrides(items: Sequence[str]) -> dict[str, dict[str, str]]:
    """['actor:rl.sigma=0.05', ...] -> {'actor': {'rl.sigma': '0.05'}}: NODE:SECTION.FIELD=VALUE, the `--set` grammar
    of the other commands (`rlt.overrides`) under a node (or NODE:PARAM=VALUE for a plain parameter such as
    model_path); malformed items name the expected form."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        node, sep, rest = item.partition(":")
        key, eq, value = rest.partition("=")
        if not (sep and eq and node and key):
            raise ValueError(f"--set {item!r}: expected NODE:SECTION.FIELD=VALUE, e.g. actor:rl.sigma=0.05")
        out.setdefault(node, {})[key] = value
    return out


DOMAIN_LOCKS = Path(os.environ.get("RLT_DOMAIN_LOCK_DIR", "/tmp/rlt_ros_domains"))  # shared with the tests


@contextlib.contextmanager
def private_domain() -> Iterator[int]:
    """Hold a ROS_DOMAIN_ID in 1..200 no one else on this machine holds (file locks shared with the tests) and set
    it in the environment while the context lasts, so the nodes started inside never talk to a session someone
    else runs on this machine (domain 0 by default)."""
    DOMAIN_LOCKS.mkdir(parents=True, exist_ok=True)
    for domain in random.sample(range(1, 201), 200):
        fd = os.open(DOMAIN_LOCKS / f"{domain}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        previous = os.environ.get("ROS_DOMAIN_ID")
        os.environ["ROS_DOMAIN_ID"] = str(domain)
        try:
            yield domain
        finally:
            if previous is None:
                os.environ.pop("ROS_DOMAIN_ID")
            else:
                os.environ["ROS_DOMAIN_ID"] = previous
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return
    raise RuntimeError(f"no free ROS_DOMAIN_ID in 1..200 (locks in {DOMAIN_LOCKS})")
