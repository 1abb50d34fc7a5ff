"""The learner on one "machine", the actor on another: two network namespaces joined by a veth pair.

Namespace A runs the learner; namespace B runs the actor and a stand-in for the VLA and the driver
(helpers/fake_vla_driver.py). They share only ROS_DOMAIN_ID, the discovery setting and the LAN Fast DDS profile
(ros_ws/fastdds_lan.xml) — what README "Run on your robot" tells a lab to set. The test passes when the actor acts
with weights the learner trained on the actor's transitions, and the veth counters show the data crossed the link.
In the test the profile's shared-memory transport is left out: both namespaces share this host's /dev/shm, and
Fast DDS would otherwise move the data through it, around the network under test.

Creating namespaces needs root (CAP_NET_ADMIN) and iproute2; where they are missing the test is skipped with the
reason (RLT_REQUIRE_NETNS=1 turns that skip into a failure).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlt.app.launch import find_executable

pytestmark = pytest.mark.ros
ROOT = Path(__file__).resolve().parents[2]
HELPER = Path(__file__).parent / "helpers" / "fake_vla_driver.py"


def _ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)


class VethPair:
    """Two fresh network namespaces joined by a veth pair, unique names and a random /24 per run."""

    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.ns = (f"rlt_{tag}_a", f"rlt_{tag}_b")
        self.dev = (f"rv{tag}a", f"rv{tag}b")  # interface names: 15 characters at most
        subnet = f"10.{secrets.randbelow(200) + 20}.{secrets.randbelow(250) + 1}"
        self.ip = (f"{subnet}.1", f"{subnet}.2")
        self.created: list[str] = []
        self.multicast = True

    def create(self, multicast: bool = True) -> None:
        self.multicast = multicast
        for ns in self.ns:
            self._run("netns", "add", ns)
            self.created.append(ns)
        self._run("link", "add", self.dev[0], "type", "veth", "peer", "name", self.dev[1])
        for ns, dev, ip in zip(self.ns, self.dev, self.ip, strict=True):
            self._run("link", "set", dev, "netns", ns)
            self._run("-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            self._run("-n", ns, "link", "set", "lo", "up")
            self._run("-n", ns, "link", "set", dev, "up")
            if multicast:  # discovery's multicast goes out of the link (a LAN that passes multicast)
                self._run("-n", ns, "route", "add", "224.0.0.0/4", "dev", dev)

    def _run(self, *args: str) -> None:
        result = _ip(*args)
        if result.returncode != 0:
            raise OSError(f"ip {' '.join(args)}: {result.stderr.strip()}")

    def tx_bytes(self, side: int) -> int:
        result = _ip("-n", self.ns[side], "-s", "link", "show", self.dev[side])
        return int(re.search(r"TX:.*\n\s*(\d+)", result.stdout).group(1))

    def delete(self) -> None:
        for ns in reversed(self.created):  # deleting a namespace deletes its end of the veth, and so the pair
            _ip("netns", "delete", ns)


@pytest.fixture
def veth(request: pytest.FixtureRequest) -> Iterator[VethPair]:
    pair = VethPair()
    try:
        if shutil.which("ip") is None:
            raise OSError("iproute2 (`ip`) is not installed")
        pair.create(multicast=request.param == "subnet")
    except OSError as exc:
        pair.delete()
        if os.environ.get("RLT_REQUIRE_NETNS") == "1":
            raise
        pytest.skip(f"cannot create network namespaces here (needs root / CAP_NET_ADMIN): {exc}")
    try:
        yield pair
    finally:
        pair.delete()


def udp_only_profile(tmp_path: Path) -> Path:
    """ros_ws/fastdds_lan.xml without its shared-memory transport (see the module docstring)."""
    text = (ROOT / "ros_ws" / "fastdds_lan.xml").read_text()
    text, n = re.subn(r"\s*<transport_id>shm_big</transport_id>(?=\s*<transport_id>udp_lan)", "", text)
    assert n == 1, "fastdds_lan.xml changed: update udp_only_profile()"
    path = tmp_path / "fastdds_lan_udp.xml"
    path.write_text(text)
    return path


def node_cmd(executable: str, name: str, params: dict[str, object]) -> list[str]:
    cmd = [str(find_executable(executable)), "--ros-args", "-r", f"__node:={name}"]
    for key, value in params.items():
        cmd += ["-p", f"{key}:={value}"]
    return cmd


@pytest.mark.parametrize("veth", ["subnet", "static_peers"], indirect=True)
def test_learner_and_actor_in_two_namespaces(veth, ros_domain, tmp_path, tiny_rl_params):
    """subnet: ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET over a link that passes multicast. static_peers: a link without
    a multicast route, LOCALHOST discovery on each machine plus ROS_STATIC_PEERS = the other machine's address."""
    discovery = "subnet" if veth.multicast else "static_peers"
    env = {
        **os.environ,
        "ROS_DOMAIN_ID": str(ros_domain),
        "FASTDDS_DEFAULT_PROFILES_FILE": str(udp_only_profile(tmp_path)),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET" if discovery == "subnet" else "LOCALHOST",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("ROS_STATIC_PEERS", None)
    envs = [dict(env), dict(env)]
    if discovery == "static_peers":
        envs[0]["ROS_STATIC_PEERS"], envs[1]["ROS_STATIC_PEERS"] = veth.ip[1], veth.ip[0]
    logs = {n: open(tmp_path / f"{n}.log", "w+") for n in ("learner", "actor", "driver")}  # noqa: SIM115
    procs: dict[str, subprocess.Popen] = {}

    def start(name: str, side: int, cmd: list[str]) -> None:
        procs[name] = subprocess.Popen(
            ["ip", "netns", "exec", veth.ns[side], *cmd], env=envs[side], stdout=logs[name], stderr=subprocess.STDOUT
        )

    def output() -> str:
        return "\n".join(f"--- {n}\n{(tmp_path / f'{n}.log').read_text()[-3000:]}" for n in logs)

    try:
        before = veth.tx_bytes(0) + veth.tx_bytes(1)
        start("learner", 0, node_cmd("learner", "learner", tiny_rl_params))
        start("actor", 1, node_cmd("actor", "actor", tiny_rl_params))
        start("driver", 1, [sys.executable, str(HELPER), "90"])
        code = procs["driver"].wait(timeout=120)
        crossed = veth.tx_bytes(0) + veth.tx_bytes(1) - before
        assert code == 0, f"the actor never acted with learned weights\n{output()}"
        assert procs["learner"].poll() is None and procs["actor"].poll() is None, output()
        # transitions one way, weight snapshots the other: far more than discovery alone
        assert crossed > 50_000, f"only {crossed} bytes crossed the veth link\n{output()}"
        print(f"{discovery}: {crossed} bytes over the veth pair {veth.dev} ({veth.ip[0]} <-> {veth.ip[1]})")
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        for f in logs.values():
            f.close()  # (the fixture deletes the namespaces)
