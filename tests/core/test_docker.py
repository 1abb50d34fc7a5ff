"""docker/: the image is built by ros_ws/setup.sh from the one lock, on the distro of the wheels; compose runs
sessions that exist. (The image itself is built where Docker runs; `make lint` runs hadolint on the Dockerfile.)"""

import re
import shlex
from pathlib import Path

import yaml

from rlt.app.launch import load_session

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    return [m.group(1) for m in re.finditer(rf"^{name} (.*(?:\\\n.*)*)", DOCKERFILE, re.MULTILINE)]


def test_image_uses_the_official_ros_image_of_the_wheels_distro():
    assert "ARG ROS_DISTRO=kilted" in DOCKERFILE and instructions("FROM") == ["ros:${ROS_DISTRO}-ros-base"]
    assert "Kilted" in (ROOT / "ros_ws" / "requirements.in").read_text()


def test_image_installs_through_setup_sh_from_the_one_lock():
    runs = " ".join(instructions("RUN"))
    assert "bash ros_ws/setup.sh --gpu" in runs
    assert "pip install" not in runs and "requirements" not in runs.replace("ros_ws/requirements", "")
    lock = (ROOT / "ros_ws" / "requirements.lock").read_text()
    assert re.search(r"^# gpu: onnxruntime-gpu\S*==\d", lock, re.MULTILINE), "the lock names the GPU build"
    for copy in instructions("COPY"):
        for src in shlex.split(copy)[:-1]:
            if not src.startswith("--"):
                assert src == "." or list(ROOT.glob(src)), f"COPY source {src} does not exist"
    entry = (ROOT / "docker" / "entrypoint.sh").read_text()
    assert "source /ws/ros_ws/env.sh" in entry and 'exec "$@"' in entry


def test_compose_services_run_existing_sessions_with_lan_discovery():
    compose = yaml.safe_load((ROOT / "docker" / "compose.yml").read_text())
    assert set(compose["services"]) == {"robot", "robot-split", "learner"}
    for name, service in compose["services"].items():
        command = service["command"]
        assert command[:2] == ["rlt", "launch"], name
        load_session(command[2])
        assert service["build"]["dockerfile"] == "docker/Dockerfile" and service["network_mode"] == "host"
        assert service["environment"]["FASTDDS_DEFAULT_PROFILES_FILE"] == "/ws/ros_ws/fastdds_lan.xml"
        for volume in service["volumes"]:
            host = volume.split(":")[0]
            assert host.startswith("/") or (ROOT / "docker" / host).resolve().parent.exists(), volume
