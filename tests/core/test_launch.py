"""Sessions: the launch files and `rlt launch` start the same nodes with the same parameters; the supervisor."""

import importlib.util
import signal
import sys
import time
import types
from pathlib import Path

import pytest

from rlt.app.launch import (
    FOXGLOVE_BRIDGE,
    LAUNCH_DIR,
    STACK_DUMP_SIGNAL,
    Launch,
    NodeSpec,
    Supervisor,
    load_session,
    param_text,
    parse_overrides,
    plan,
)

SESSIONS = ("sim", "sim_eval", "robot", "robot_split", "robot_learner", "rehearsal", "sim_human", "sim_teleop",
            "replay")


class _Recorder:
    """Stands in for a launch / launch_ros action class: records the keyword arguments it was built with."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def _load_launch_file(path: Path, monkeypatch) -> list:
    """Run generate_launch_description() with recording stand-ins for the launch packages (absent on pip)."""
    fake = {
        name: types.ModuleType(name)
        for name in ("launch", "launch.actions", "launch.conditions", "launch.substitutions", "launch_ros",
                     "launch_ros.actions")
    }
    fake["launch"].LaunchDescription = lambda actions: actions
    fake["launch.actions"].DeclareLaunchArgument = type("DeclareLaunchArgument", (_Recorder,), {})
    fake["launch.actions"].Shutdown = type("Shutdown", (_Recorder,), {})
    fake["launch.conditions"].IfCondition = lambda predicate: f"if {predicate}"
    fake["launch.substitutions"].LaunchConfiguration = lambda name: f"$({name})"
    fake["launch_ros.actions"].Node = type("Node", (_Recorder,), {})
    for name, module in fake.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, "rlt_nodes.launch_description", raising=False)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


@pytest.mark.parametrize("name", SESSIONS)
def test_launch_file_and_runner_agree(name, monkeypatch, tmp_path):
    path = LAUNCH_DIR / f"{name}.launch.py"
    if not path.is_file():
        pytest.skip(f"{path.name}: session without a launch file")
    actions = _load_launch_file(path, monkeypatch)
    session = load_session(name)
    args = {a.args[0]: a.kwargs for a in actions if type(a).__name__ == "DeclareLaunchArgument"}
    assert args == {a.name: {"default_value": a.default, "description": a.description} for a in session.arguments}
    assert all(kw["description"] for kw in args.values())
    nodes = [a.kwargs for a in actions if type(a).__name__ == "Node"]
    # the runner's command lines, with the session's own params file, as the launch argument's default; the
    # Foxglove bridge last, started by foxglove:=true as by --foxglove
    assert [n["condition"] for n in nodes] == [None] * len(session.nodes) + ["if $(foxglove)"]
    assert args["foxglove"]["default_value"] == "false"
    bin_dir = tmp_path / "lib" / "rlt_nodes"
    bin_dir.mkdir(parents=True)
    for node in (*session.nodes, FOXGLOVE_BRIDGE):
        (bin_dir / node.executable).touch()
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path))
    launches = plan(session, foxglove=True)
    assert [(n["executable"], n["name"]) for n in nodes] == [
        (launch.node.executable, launch.node.name) for launch in launches
    ]
    for node_kwargs, launch in zip(nodes, launches, strict=True):
        assert node_kwargs["package"] == "rlt_nodes"
        own = [dict(launch.node.params)] if launch.node.params else []
        base = [str(path) for path in session.base_params]  # under the session's own file, in both
        assert node_kwargs["parameters"] == [*base, "$(params_file)", *own]
        assert args["params_file"]["default_value"] == str(session.params_file)
        files = [launch.cmd[i + 1] for i, arg in enumerate(launch.cmd) if arg == "--params-file"]
        assert files == [*base, str(session.params_file)]
        params = [launch.cmd[i + 1] for i, arg in enumerate(launch.cmd) if arg == "-p"]
        assert params == [f"{launch.node.name}:{k}:={param_text(v)}" for k, v in launch.node.params]
        assert (node_kwargs["on_exit"] is not None) == launch.node.required
        assert node_kwargs["respawn"] == (not launch.node.required)
        remaps = [launch.cmd[i + 1] for i, arg in enumerate(launch.cmd) if arg == "-r"][1:]  # after __node:=
        assert [f"{a}:={b}" for a, b in node_kwargs["remappings"]] == remaps


def test_every_session_loads_and_names_existing_params():
    for name in SESSIONS:
        session = load_session(name)
        assert session.params_file.is_file() and session.nodes
    with pytest.raises(ValueError, match=r"unknown session 'simm'.*expected one of"):
        load_session("simm")


def test_overrides_parse_and_unknown_nodes_are_refused(tmp_path, monkeypatch):
    assert parse_overrides(["actor:rl.sigma=0.05", "actor:actor.mode=eval"]) == {
        "actor": {"rl.sigma": "0.05", "actor.mode": "eval"}
    }
    with pytest.raises(ValueError, match=r"expected NODE:SECTION\.FIELD=VALUE, e\.g\. actor:rl\.sigma=0\.05"):
        parse_overrides(["actor.sigma=1"])
    bin_dir = tmp_path / "lib" / "rlt_nodes"
    bin_dir.mkdir(parents=True)
    for node in load_session("sim").nodes:
        (bin_dir / node.executable).touch()
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path))
    actor = next(x for x in plan(load_session("sim"), overrides={"actor": {"actor.mode": "eval"}})
                 if x.node.name == "actor")
    # node-scoped, or the params file's entry under the node's name would win over it
    assert actor.cmd[-2:] == ("-p", "actor:actor.mode:=eval")
    with pytest.raises(ValueError, match=r"unknown node\(s\) \['critic'\]"):
        plan(load_session("sim"), overrides={"critic": {"x": "1"}})


def test_the_foxglove_flag_adds_exactly_the_bridge_to_any_session(tmp_path, monkeypatch):
    bin_dir = tmp_path / "lib" / "rlt_nodes"
    bin_dir.mkdir(parents=True)
    for name in SESSIONS:
        for node in (*load_session(name).nodes, FOXGLOVE_BRIDGE):
            (bin_dir / node.executable).touch()
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path))
    for name in SESSIONS:
        session = load_session(name)
        without, with_bridge = plan(session, namespace="arm1"), plan(session, namespace="arm1", foxglove=True)
        assert with_bridge[:-1] == without and FOXGLOVE_BRIDGE.name not in {x.node.name for x in without}
        bridge = with_bridge[-1]
        assert bridge.node == FOXGLOVE_BRIDGE and not bridge.node.required  # a viewer never stops a session
        files = tuple(a for path in session.layers() for a in ("--params-file", str(path)))
        assert bridge.cmd == (str(bin_dir / "foxglove_bridge"), "--ros-args", "-r", "__node:=foxglove_bridge",
                              "-r", "__ns:=arm1", *files)
    overrides = {"foxglove_bridge": {"port": "8766"}}
    assert plan(load_session("sim"), overrides=overrides, foxglove=True)[-1].cmd[-2:] == (
        "-p", "foxglove_bridge:port:=8766")
    with pytest.raises(ValueError, match=r"unknown node\(s\) \['foxglove_bridge'\]"):
        plan(load_session("sim"), overrides=overrides)  # without --foxglove there is no bridge to set


def test_supervisor_stops_all_when_a_required_node_exits():
    sleeper = Launch(
        NodeSpec("sleep", "sleeper", required=False), (sys.executable, "-c", "import time; time.sleep(60)"), {}
    )
    quitter = Launch(NodeSpec("quit", "quitter"), (sys.executable, "-c", "raise SystemExit(3)"), {})
    supervisor = Supervisor([sleeper, quitter], grace_s=5)
    assert supervisor.run(timeout_s=30) == 1
    assert supervisor.stop_reason == "quitter exited with 3"
    assert supervisor.returncodes["sleeper"] < 0  # interrupted, not left running


def test_supervisor_clean_exit_is_zero():
    done = Launch(NodeSpec("ok", "ok"), (sys.executable, "-c", "pass"), {})
    assert Supervisor([done]).run(timeout_s=30) == 0


def test_only_the_node_that_commands_the_arm_is_required():
    # the player is the replay session's clock and data; sim_arm is the rehearsal's arm itself (its hardware)
    arm = {"sim_driver", "chunk_executor", "bag_player", "sim_arm"}
    for name in SESSIONS:
        for node in load_session(name).nodes:
            assert node.required == (node.executable in arm), (name, node.name)


def test_supervisor_respawns_a_dead_node_with_backoff_and_keeps_its_log(tmp_path):
    runs = tmp_path / "runs"
    # dies twice (exit 1, then SIGKILL), then lives until stopped
    flaky = Launch(NodeSpec("flaky", "flaky", required=False), (sys.executable, "-c", f"""
import os, pathlib, signal, time
runs = pathlib.Path({str(runs)!r})
n = int(runs.read_text()) if runs.exists() else 0
runs.write_text(str(n + 1))
print("run", n, flush=True)
if n == 0:
    raise SystemExit(1)
if n == 1:
    os.kill(os.getpid(), signal.SIGKILL)
time.sleep(60)
"""), {})
    driver = Launch(NodeSpec("driver", "driver"), (sys.executable, "-c", f"""
import pathlib, time
deadline, runs = time.monotonic() + 30, pathlib.Path({str(runs)!r})
while time.monotonic() < deadline and not (runs.exists() and runs.read_text() == "3"):
    time.sleep(0.05)
time.sleep(0.5)
"""), {})
    lines: list[str] = []
    supervisor = Supervisor([flaky, driver], log_dir=tmp_path / "logs", grace_s=5, log=lines.append)
    assert supervisor.run(timeout_s=60) == 0, supervisor.stop_reason
    assert supervisor.stop_reason == "driver exited with 0"
    assert supervisor.deaths == [("flaky", 1), ("flaky", -9)] and supervisor.restarts["flaky"] == 2
    assert lines == ["flaky exited with 1: respawning in 0.5 s (restart 1)",
                     "flaky exited with -9: respawning in 1 s (restart 2)"]
    assert (tmp_path / "logs" / "flaky.log").read_text().startswith("run 0\nrun 1\nrun 2\n")  # one file, appended


def test_a_node_failing_at_its_first_start_stops_the_session_with_its_reason(tmp_path):
    bad = Launch(NodeSpec("bad", "bad", required=False), (sys.executable, "-c", """
print("[LearnerNode] startup error: parameter checkpoint_every_s='abc': expected float, got str", flush=True)
raise SystemExit(2)
"""), {})
    arm = Launch(NodeSpec("arm", "arm"), (sys.executable, "-c", "import time; time.sleep(60)"), {})
    supervisor = Supervisor([bad, arm], log_dir=tmp_path, grace_s=5, log=lambda line: None)
    t0 = time.monotonic()
    assert supervisor.run(timeout_s=30) == 1 and time.monotonic() - t0 < 15  # not respawned for ever
    assert supervisor.stop_reason == ("bad failed at startup (exit 2): [LearnerNode] startup error: parameter "
                                      "checkpoint_every_s='abc': expected float, got str")
    assert supervisor.restarts["bad"] == 0 and supervisor.returncodes["arm"] < 0


def test_a_node_waiting_for_its_respawn_when_the_session_ends_is_no_failure():
    crash = Launch(NodeSpec("crash", "crash", required=False),
                   (sys.executable, "-c", "import os, signal, time; time.sleep(0.3); os.kill(os.getpid(), 9)"), {})
    driver = Launch(NodeSpec("driver", "driver"), (sys.executable, "-c", "import time; time.sleep(0.6)"), {})
    supervisor = Supervisor([crash, driver], grace_s=5, log=lambda line: None)
    assert supervisor.run(timeout_s=30) == 0, (supervisor.stop_reason, supervisor.returncodes)
    assert supervisor.deaths[0] == ("crash", -9)


def test_a_node_that_ignores_sigint_and_sigterm_leaves_its_stack_in_its_log_and_is_killed(tmp_path):
    # what rlt_nodes.runner.run_node installs, in a process stuck in a function the stack must name
    stuck = Launch(NodeSpec("stuck", "stuck", required=False), (sys.executable, "-c", f"""
import faulthandler, signal, time
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, signal.SIG_IGN)
faulthandler.register({int(STACK_DUMP_SIGNAL)}, all_threads=True, chain=False)
def wedged_in_shutdown():
    print("ready", flush=True)
    time.sleep(60)
wedged_in_shutdown()
"""), {})
    arm = Launch(NodeSpec("arm", "arm"), (sys.executable, "-c", "import time; time.sleep(1.0)"), {})
    lines: list[str] = []
    supervisor = Supervisor([stuck, arm], log_dir=tmp_path, grace_s=0.5, log=lines.append)
    assert supervisor.run(timeout_s=30) == 1  # killed: a failure at the end
    assert supervisor.returncodes["stuck"] == -signal.SIGKILL and supervisor.killed == ["stuck"]
    assert lines == ["stuck ignored SIGINT and SIGTERM for 1 s: killing; every thread's stack is in the log"]
    log = (tmp_path / "stuck.log").read_text()
    assert log.startswith("ready\n") and "in wedged_in_shutdown" in log, log
