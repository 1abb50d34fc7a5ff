"""`rlt dataset build`: recorder bags (robot- and sim-like sessions) become a dataset that reads back exactly,
trains the VLA and the RL token without privileged data, and bad input is refused naming what was wrong."""

import json
from collections import defaultdict

import numpy as np
import pytest

pytestmark = pytest.mark.sim
pytest.importorskip("mujoco")  # rlt.sim.demos (the dataset layout) imports the simulator

from rlt import cli  # noqa: E402
from rlt.bags.dataset import BuildConfig, build_dataset  # noqa: E402
from rlt.bags.io import BagReader, BagWriter, header  # noqa: E402
from rlt.models.data import frames_from_episodes, load_episodes  # noqa: E402
from rlt.sim.demos import METADATA_KEY, TIP_TOPIC, load_demos, read_dataset_info  # noqa: E402
from rlt.types import Event, Source, Terminal  # noqa: E402

MS = 1_000_000  # ns
PERIOD = 50 * MS  # 20 Hz control
SIZE = 16  # px
JOINTS = ("x", "y", "z", "yaw", "pitch", "roll")
AXES = ("dx", "dy", "dz", "dyaw")
CAMERA_ID = {"front": 1, "wrist": 2}
INSTRUCTION = "insert the peg"
TERMINAL = {"success": Terminal.SUCCESS, "failure": Terminal.FAILURE, "timeout": Terminal.TIMEOUT,
            "reset": Terminal.TIMEOUT}
ARM = BuildConfig(joint_names=JOINTS)  # the arm's joints: a gripper publishes on joint_states too
EVENT = {"success": Event.SUCCESS, "failure": Event.FAILURE, "timeout": Event.TIMEOUT, "reset": Event.RESET}


def image(camera, k, size=SIZE):
    """uint8[S, S, 3] coding the camera and the message index k in its pixels."""
    out = np.zeros((size, size, 3), np.uint8)
    out[..., 0], out[..., 1], out[..., 2] = k % 256, k // 256, CAMERA_ID[camera]
    return out


def proprio_at(stamp):
    """float32[12] the fake arm reports at `stamp`: positions then velocities."""
    position = stamp * 1e-9 + 0.1 * np.arange(6)
    return np.concatenate([position, -0.01 * np.arange(6)]).astype(np.float32)


class Session:
    """Messages a session publishes, as the recorder stores them (absolute names, receive-time log stamps)."""

    def __init__(self, t0, namespace="", cameras=None, joints_every=10 * MS):
        self.t0, self.prefix = t0, f"/{namespace}/" if namespace else "/"
        default = {"front": (t0, 25 * MS), "wrist": (t0 + 7 * MS, 30 * MS)}  # camera -> first stamp, spacing
        self.cameras = default if cameras is None else cameras
        self.joints_every = joints_every
        self.items = []  # (log ns, topic, kind, payload)
        self.now = t0 + 20 * MS  # the next episode's START
        self.rows = 0
        self.expected = []  # per episode: what the dataset must hold, or None if dropped

    def put(self, stamp, topic, kind, payload, delay=1 * MS, items=None):
        items = self.items if items is None else items
        items.append((stamp + delay + len(items), self.prefix + topic, kind, payload))  # received in publish order

    def event(self, stamp, eid, kind, step, detail=""):
        self.put(stamp, "episode/events", "event", (stamp, eid, int(kind), step, detail))

    def request(self, stamp, eid, step, rows, sources, terminal=Terminal.NONE, delay=1 * MS):
        data = np.asarray(rows, np.float32).reshape(-1, len(AXES))
        self.put(stamp, "chunk_request", "request", (stamp, eid, step, data, [int(s) for s in sources], terminal),
                 delay)

    def episode(self, eid, plan, end, extra_events=()):
        """Run an episode like the chunk executor: plan = [(source, rows, latency in ticks)], each chunk's rows on
        consecutive ticks, a request stamped at the tick of its last row; end = (outcome or None, rows, latency).
        What the dataset must hold follows the documented alignment: step k of a request at step s is observed at
        its stamp - (s - k) periods, never before the previous request."""
        start = self.now
        self.event(start, eid, Event.START, 0, INSTRUCTION)
        self.request(start, eid, 0, [], [])
        if eid == 0:
            self.request(start, eid, 0, [], [], delay=900 * MS)  # re-sent (nobody answered): counted once
        prev, step = start, 0
        want = {"actions": [], "sources": [], "obs": []}
        outcome, end_rows, end_latency = end
        steps = [*plan, (plan[-1][0], end_rows, end_latency)] if outcome else plan
        for i, (source, n, latency) in enumerate(steps):
            last = outcome is not None and i == len(steps) - 1
            stamp = prev + round((latency + max(n - 1, 0)) * PERIOD)
            if last and outcome == "failure":
                data = np.zeros((n, 4), np.float32)
            else:
                data = np.array([[1e-3 * (self.rows + j + 1), -1e-3 * j, 5e-4, 1e-2 * eid] for j in range(n)],
                                np.float32).reshape(n, 4)
            self.rows += n
            want["obs"] += [max(prev, stamp - (n - j) * PERIOD) for j in range(n)]
            want["actions"] += list(data)
            want["sources"] += [int(source)] * n
            step += n
            if last:
                self.event(stamp, eid, EVENT[outcome], step, "operator")
            for at, kind in extra_events:
                if at == i:
                    self.event(stamp, eid, kind, step)
            self.request(stamp, eid, step, data, [source] * n, TERMINAL[outcome] if last else Terminal.NONE)
            prev = stamp
        self.now = prev + 500 * MS
        kept = outcome in ("success", "failure", "timeout")
        self.expected.append({**want, "outcome": outcome, "eid": eid} if kept else None)

    def write(self, path, skip_topics=(), bad_image=None):
        """The bag: the episodes plus sensors from t0 to the end (cameras, the arm's and a gripper's joint states,
        a full-size color stream), without `skip_topics`; `bad_image` = (camera, index, size) replaces one image."""
        items = list(self.items)
        for camera, (first, every) in self.cameras.items():
            for k, stamp in enumerate(range(first, self.now, every)):
                size = bad_image[2] if bad_image and bad_image[:2] == (camera, k) else SIZE
                self.put(stamp, f"camera/{camera}/image_raw", "image", (stamp, camera, image(camera, k, size)),
                         items=items)
        for stamp in range(self.t0, self.now, self.joints_every) if self.joints_every else ():
            self.put(stamp, "joint_states", "joints", (stamp, JOINTS, proprio_at(stamp)), items=items)
            gripper = (stamp + 5 * MS, ("gripper",), np.zeros(2, np.float32))  # another publisher: not the arm's
            self.put(stamp + 5 * MS, "joint_states", "joints", gripper, items=items)
        if "front" in self.cameras:
            self.put(self.t0, "camera/front/color/image_raw", "image", (self.t0, "front", image("front", 0, 24)),
                     items=items)
        types = {"event": "rlt_msgs/msg/EpisodeEvent", "request": "rlt_msgs/msg/ChunkRequest",
                 "image": "sensor_msgs/msg/Image", "joints": "sensor_msgs/msg/JointState"}
        with BagWriter(path) as bag:
            t, store = bag.types, bag.store
            added = set()
            for log_ns, topic, kind, p in sorted(items, key=lambda item: item[0]):
                if any(topic.endswith(s) for s in skip_topics):
                    continue
                if topic not in added:
                    bag.add_topic(topic, types[kind])
                    added.add(topic)
                if kind == "event":
                    msg = t[types[kind]](header=header(store, p[0]), episode_id=p[1], event=p[2], step=p[3],
                                         detail=p[4])
                elif kind == "request":
                    stamp, eid, step, data, sources, terminal = p
                    msg = t[types[kind]](header=header(store, stamp), episode_id=eid, step=step, phase=0,
                                         need_chunk=not terminal, terminal=int(terminal), axis_names=list(AXES),
                                         executed=data.reshape(-1), sources=np.array(sources, np.uint8),
                                         rewards=np.zeros(len(data), np.float32))
                elif kind == "image":
                    stamp, camera, pixels = p
                    h, w = pixels.shape[:2]
                    msg = t[types[kind]](header=header(store, stamp, camera), height=h, width=w, encoding="rgb8",
                                         is_bigendian=0, step=3 * w, data=pixels.reshape(-1))
                else:
                    stamp, names, values = p
                    n = len(names)
                    msg = t[types[kind]](header=header(store, stamp), name=list(names),
                                         position=values[:n].astype(np.float64),
                                         velocity=values[n:].astype(np.float64), effort=np.zeros(0))
                bag.write(topic, log_ns, msg)
        return path


def robot_session():
    """A robot-like session (ROS time, chunk latency, cameras and joints at their own rates): a success with an RL
    phase, a failure judged while the arm held, one a person finished after intervening, one cut by RESET, a
    timeout, and one the recording stopped in."""
    s = Session(t0=1000 * 10**9)
    vla, actor, human = Source.VLA, Source.ACTOR, Source.HUMAN
    s.episode(0, [(vla, 4, 1), (vla, 4, 2), (actor, 2, 2)], ("success", 2, 1), extra_events=[(1, Event.HANDOFF)])
    s.event(s.now - 400 * MS, 0, Event.RESET, 10)  # the sim driver's reset after the outcome: ignored
    # FAILURE pressed 20 ms after the last request: one zero row (the executor's _end), observed at that request
    s.episode(1, [(vla, 4, 1)], ("failure", 1, 0.4))
    s.episode(2, [(vla, 4, 1), (human, 4, 2)], ("success", 2, 1), extra_events=[(0, Event.INTERVENE_BEGIN)])
    s.episode(3, [(vla, 4, 1)], ("reset", 0, 2))
    s.episode(4, [(vla, 3, 1)], ("timeout", 1, 1))
    s.episode(5, [(vla, 4, 1)], (None, 0, 0))
    return s


def sim_session():
    """A sim-like session in a namespace: sim time, every stamp on the control grid, one success."""
    s = Session(t0=0, namespace="sim1", cameras={"front": (0, PERIOD), "wrist": (0, PERIOD)}, joints_every=PERIOD)
    s.now = PERIOD
    s.episode(0, [(Source.VLA, 4, 1), (Source.VLA, 4, 1)], ("success", 1, 1))
    return s


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("build")
    robot, sim = robot_session(), sim_session()
    bags = [robot.write(root / "robot_bag"), sim.write(root / "sim_bag")]
    lines = []
    info = build_dataset(bags, root / "dataset", ARM.replace(cameras=("front", "wrist")), log=lines.append)
    return root, robot, sim, info, lines


def expected_episodes(sessions):
    return [(s, e) for s in sessions for e in s.expected if e is not None]


def test_episodes_read_back_exactly(built):
    root, robot, sim, info, _ = built
    demos = load_demos(root / "dataset")
    expected = expected_episodes([robot, sim])
    assert [e["outcome"] for _, e in expected] == ["success", "failure", "success", "timeout", "success"]
    assert len(demos) == len(expected) == info["episodes"]
    for demo, (session, want) in zip(demos, expected, strict=True):
        t_len = len(want["actions"])
        assert demo.duration == t_len and demo.instruction == INSTRUCTION
        assert demo.outcome == want["outcome"] and demo.success == (want["outcome"] == "success")
        np.testing.assert_array_equal(demo.actions, np.stack(want["actions"]))
        np.testing.assert_array_equal(demo.sources, np.array(want["sources"], np.uint8))
        obs = np.array(want["obs"])
        # proprio: the latest joint state of the arm (not the gripper's) at or before each step's observation
        joint_stamps = session.t0 + (obs - session.t0) // session.joints_every * session.joints_every
        np.testing.assert_array_equal(demo.proprio, np.stack([proprio_at(t) for t in joint_stamps]))
        for camera, (first, every) in session.cameras.items():
            index = (obs - first) // every  # latest image at or before
            np.testing.assert_array_equal(demo.images[camera], np.stack([image(camera, k) for k in index]))
        assert demo.tip_offset.shape == (t_len, 3) and np.isnan(demo.tip_offset).all()
    human = demos[2]
    assert human.success and list(human.sources[-6:]) == [Source.HUMAN] * 6  # finished by a person: a success
    assert list(demos[0].sources) == [Source.VLA] * 8 + [Source.ACTOR] * 4
    np.testing.assert_array_equal(demos[1].actions[-1], np.zeros(4, np.float32))  # the failure's hold step


def test_metadata_and_dropped_episodes(built):
    root, _, _, info, lines = built
    stored = read_dataset_info(root / "dataset")
    assert stored == json.loads(json.dumps(info))
    assert stored["cameras"] == ["front", "wrist"] and stored["image_size"] == SIZE
    assert stored["joint_names"] == list(JOINTS) and stored["axis_names"] == list(AXES)
    assert stored["instruction"] == INSTRUCTION and stored["control_hz"] == 20.0
    assert (stored["successes"], stored["failures"], stored["timeouts"]) == (3, 1, 1)
    assert stored["human_steps"] == 6 and stored["intervened_episodes"] == 1
    assert stored["steps"] == 12 + 5 + 10 + 4 + 9
    assert [(e["bag"].split("/")[-1], e["episode_id"]) for e in stored["episode_list"]] == [
        ("robot_bag", 0), ("robot_bag", 1), ("robot_bag", 2), ("robot_bag", 4), ("sim_bag", 0)]
    assert stored["episode_list"][0]["handoff_step"] == 8
    dropped = {d["episode_id"]: d["reason"] for d in stored["dropped"]}
    assert set(dropped) == {3, 5} and "RESET" in dropped[3] and "no end event" in dropped[5]
    assert any("episode 3 dropped" in line for line in lines) and any("episode 5 dropped" in line for line in lines)
    with BagReader(root / "dataset") as bag:
        assert TIP_TOPIC not in bag.topics and json.loads(bag.metadata[METADATA_KEY])["episodes"] == 5
        assert not any("color" in t for t in bag.topics)


def test_vla_token_and_image_features_train_without_privileged_data(built, tmp_path, capsys):
    from rlt.models.bc import train_vla
    from rlt.models.image_features import diagnose_image_features, train_image_features
    from rlt.models.rl_token import diagnose_token, train_token
    from rlt.models.testing import tiny_image_features_config, tiny_token_config, tiny_train_config, tiny_vla_config

    root = built[0]
    dataset = root / "dataset"
    episodes = load_episodes(dataset)
    assert len(episodes) == 5 and all(np.isnan(e.tip_offset).all() for e in episodes)
    cfg = tiny_vla_config(image_size=SIZE, cameras=("front", "wrist"), proprio_dim=2 * len(JOINTS))
    frames = frames_from_episodes(episodes, cfg.cameras, cfg.chunk_len)
    person = frames.episode == 2  # the episode a person finished: success, goal = its own final proprio
    assert frames.success[person].all()
    final = episodes[2].final_proprio  # the joint state at its SUCCESS event: after the last row, not before it
    assert not np.array_equal(final, episodes[2].proprio[-1])
    np.testing.assert_array_equal(frames.final_proprio[person], np.repeat(final[None], person.sum(), 0))
    vla = train_vla(dataset, tmp_path / "vla", cfg, tiny_train_config(holdout_fraction=0.4), progress=False)
    token = train_token(vla, dataset, tmp_path / "token", tiny_token_config(), progress=False)
    report = diagnose_token(token)  # the checkpoint's dataset path, no privileged topic: no probe, no crash
    assert "probe_r2_x" not in report and np.isfinite(report["loss_real"])
    assert "no probe" in capsys.readouterr().out
    features = train_image_features(vla, dataset, tmp_path / "features", tiny_image_features_config(), progress=False)
    report = diagnose_image_features(features, vla, dataset)
    assert "probe_r2_x" not in report and np.isfinite(report["loss_real"])
    assert "no probe" in capsys.readouterr().out


def test_cli_builds_and_reports(built, tmp_path, capsys):
    root = built[0]
    code = cli.main(["dataset", "build", str(root / "robot_bag"), "--out", str(tmp_path / "ds"),
                     "--instruction", "put it in", "--image-size", str(SIZE), "--joint-names", ",".join(JOINTS)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "wrote 4 episodes" in out and "episode 5 dropped" in err
    assert {d.instruction for d in load_demos(tmp_path / "ds")} == {"put it in"}


def test_a_sim_driver_session_converts_exactly(tmp_path):
    """The real sim driver's protocol (what sim_driver_node and sim_camera publish): every step's proprio and image
    are those of the observation its row was executed from; operator SUCCESS / FAILURE end episodes, RESET drops one."""
    from rlt.execution import Chunking
    from rlt.sim.config import SimConfig
    from rlt.sim.driver import DriverConfig, SimDriver
    from rlt.sim.env import AXIS_NAMES, PegInsertEnv
    from rlt.types import ActionChunk

    rng = np.random.default_rng(0)
    session = Session(t0=0, cameras={}, joints_every=0)
    names = ("px", "py", "pz", "pyaw", "ppitch", "proll")

    def publish(out):  # one image (coding its stamp) and one joint state per driver output, then events, request
        session.put(out.stamp_ns, "joint_states", "joints", (out.stamp_ns, names, out.proprio))
        session.put(out.stamp_ns, "camera/front/image_raw", "image",
                    (out.stamp_ns, "front", image("front", out.stamp_ns // PERIOD)))
        for e in out.events:
            session.event(e.stamp_ns, e.episode_id, e.event, e.step, e.detail)
        if out.request is not None:
            r = out.request
            session.request(r.stamp_ns, r.episode_id, r.step, r.executed, r.sources, r.terminal)

    truth = []
    with PegInsertEnv(SimConfig(cameras=())) as env:
        assert round(1e9 / env.cfg.control_hz) == PERIOD
        driver = SimDriver(env, DriverConfig(mode="critical", handoff="never", episodes=3), Chunking(4, 2), INSTRUCTION)
        for command, at in ((Event.SUCCESS, 6), (Event.FAILURE, 9), (Event.RESET, 3)):
            out = driver.begin_episode()
            publish(out)
            want = {"proprio": [], "stamps": [], "actions": []}
            while not out.episode_over:
                if driver.waiting_for_chunk:
                    driver.submit_chunk(ActionChunk(rng.uniform(-2e-3, 2e-3, (4, 4)), AXIS_NAMES, Source.VLA,
                                                    stamp_ns=driver.pending_request.stamp_ns))
                if len(want["proprio"]) == at:
                    driver.operator(command)
                want["proprio"].append(out.proprio)  # the observation the next row is executed from
                want["stamps"].append(out.stamp_ns)
                out = driver.step()
                publish(out)
                if out.request is not None:
                    want["actions"] += list(out.request.executed)
            truth.append(want)
    session.now = out.stamp_ns + PERIOD
    bag = session.write(tmp_path / "bag")
    info = build_dataset([bag], tmp_path / "ds")
    demos = load_demos(tmp_path / "ds")
    assert [d.outcome for d in demos] == ["success", "failure"] and info["dropped"][0]["episode_id"] == 2
    assert info["joint_names"] == list(names) and info["cameras"] == ["front"]
    for demo, want in zip(demos, truth, strict=False):
        assert demo.duration == len(want["actions"]) == len(want["proprio"])
        np.testing.assert_array_equal(demo.actions, np.stack(want["actions"]))
        np.testing.assert_array_equal(demo.proprio, np.stack(want["proprio"]).astype(np.float32))
        codes = [k // PERIOD for k in want["stamps"]]
        np.testing.assert_array_equal(demo.images["front"], np.stack([image("front", k) for k in codes]))
        assert (demo.sources == Source.VLA).all()


def test_a_chunk_executor_session_converts(tmp_path):
    """The robot executor's real protocol against a perfectly tracking fake arm (joint states without velocities):
    its episodes (operator START, SUCCESS, FAILURE, a START that restarts a running one) come out whole."""
    from rlt.execution import Chunking
    from rlt.robot.executor import SIM_JOINTS, ChunkExecutor, ExecutorConfig
    from rlt.robot.safety import SafetyConfig
    from rlt.types import ActionChunk

    safety = SafetyConfig(workspace_min=(-0.1, -0.1, 0.0, -1.0), workspace_max=(0.1, 0.1, 0.2, 1.0),
                          max_joint_velocity=(0.1, 0.1, 0.1, 1.0, 1.0, 1.0))
    ex = ChunkExecutor(ExecutorConfig(), safety, chunking=Chunking(4, 2))
    now, q = 10**12, np.array([0.0, 0.0, 0.1, 0.0, 0.0, 0.0])
    session = Session(t0=now, cameras={"front": (now + 3 * MS, 33 * MS)}, joints_every=0)
    executed = defaultdict(list)  # episode id -> rows as reported

    def publish(out):
        nonlocal q
        if out.command is not None:
            q = out.command.positions[0].copy()  # reached by the next tick
        for e in out.events:
            session.event(e.stamp_ns, e.episode_id, e.event, e.step, e.detail)
        for r in out.requests:
            session.request(r.stamp_ns, r.episode_id, r.step, r.executed, r.sources, r.terminal)
            executed[r.episode_id] += list(zip(r.executed, r.sources, strict=True))

    def run(ticks, source):
        nonlocal now
        for _ in range(ticks):
            now += PERIOD
            session.put(now, "joint_states", "joints", (now, SIM_JOINTS, q.copy()))  # positions only
            ex.on_joint_state(q, now)
            publish(ex.tick(now))
            if ex.pending_stamp_ns is not None:  # answered 20 ms later, before the next tick
                rows = np.tile([1e-3, -1e-3, 5e-4, 0.0], (4, 1)) * (1 + len(session.items) % 3)
                ex.submit_chunk(ActionChunk(rows, AXES, source, stamp_ns=ex.pending_stamp_ns), now + 20 * MS)

    publish(ex.on_operator(Event.START, now, INSTRUCTION))  # episode 0: the VLA, then SUCCESS
    run(11, Source.VLA)
    publish(ex.on_operator(Event.SUCCESS, now + 10 * MS))
    publish(ex.on_operator(Event.START, now + 30 * MS, INSTRUCTION))  # episode 1: restarted by START: dropped
    run(6, Source.HUMAN)
    publish(ex.on_operator(Event.START, now + 10 * MS, INSTRUCTION))  # episode 2: ends in FAILURE while holding
    run(9, Source.ACTOR)
    publish(ex.on_operator(Event.FAILURE, now + 10 * MS))
    publish(ex.on_operator(Event.START, now + 30 * MS, INSTRUCTION))  # episode 3: still running at the end
    run(3, Source.VLA)
    session.now = now + PERIOD
    info = build_dataset([session.write(tmp_path / "bag")], tmp_path / "ds", BuildConfig(image_size=SIZE))
    assert {d["episode_id"]: d["reason"].split(" (")[0] for d in info["dropped"]} == {
        1: "ended by RESET without an outcome", 3: "no end event"}
    demos = load_demos(tmp_path / "ds")
    assert [d.outcome for d in demos] == ["success", "failure"]
    for demo, eid in zip(demos, (0, 2), strict=True):
        rows, sources = zip(*executed[eid], strict=True)
        np.testing.assert_array_equal(demo.actions, np.stack(rows))
        np.testing.assert_array_equal(demo.sources, np.array(sources, np.uint8))
        assert demo.proprio.shape == (len(rows), 12) and (demo.proprio[:, 6:] == 0).all()  # no velocities: zeros
    np.testing.assert_array_equal(demos[0].proprio[0, :6], np.float32([0.0, 0.0, 0.1, 0.0, 0.0, 0.0]))
    assert list(demos[1].sources[-1:]) == [Source.ACTOR] and not demos[1].actions[-1].any()  # the hold step


def test_an_episode_with_a_request_missing_is_dropped(tmp_path):
    session = robot_session()
    requests = [item for item in session.items if item[2] == "request" and item[3][1] == 0]
    session.items.remove(requests[2])  # episode 0's report of steps 0..3 (after its START request, sent twice)
    info = build_dataset([session.write(tmp_path / "bag")], tmp_path / "ds", ARM)
    dropped = {d["episode_id"]: d["reason"] for d in info["dropped"]}
    assert dropped[0] == ("chunk_request rows of steps 0..3 are not in the recording (the request at step 8 reports "
                          "4 rows)")
    assert [e["episode_id"] for e in info["episode_list"]] == [1, 2, 4]


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_missing_topic_is_refused_naming_it(built, tmp_path):
    bag = robot_session().write(tmp_path / "bag", skip_topics=("joint_states",))
    with pytest.raises(ValueError, match=r"no topic /joint_states .*proprio"):
        build_dataset([bag], tmp_path / "ds")
    assert leftovers(tmp_path) == ["bag"]
    bag = sim_session().write(tmp_path / "sim", skip_topics=("chunk_request",))
    code = cli.main(["dataset", "build", str(bag), "--out", str(tmp_path / "ds")])
    assert code == 2 and leftovers(tmp_path) == ["bag", "sim"]
    with pytest.raises(ValueError, match=r"no topic /camera/rear/image_raw"):
        build_dataset([built[0] / "robot_bag"], tmp_path / "ds", ARM.replace(cameras=("rear",)))
    with pytest.raises(ValueError, match=r"/joint_states carries 2 sets of joint names \(\['x', .*\['gripper'\]\); "
                                         r"pass the proprio joints \(--joint-names\)"):
        build_dataset([built[0] / "robot_bag"], tmp_path / "ds")
    with pytest.raises(ValueError, match=r"no /joint_states message names all of the joints \['x', 'elbow'\]"):
        build_dataset([built[0] / "robot_bag"], tmp_path / "ds", BuildConfig(joint_names=("x", "elbow")))
    assert leftovers(tmp_path) == ["bag", "sim"]


def test_image_of_another_size_is_refused_naming_topic_and_episode(tmp_path):
    session = robot_session()
    # wrist image 40 is what step 0 of episode 2 sees (its START is at t0 + 1.22 s; wrist images every 30 ms)
    bag = session.write(tmp_path / "bag", bad_image=("wrist", (session.expected[2]["obs"][0] - session.t0 - 7 * MS)
                                                     // (30 * MS), 12))
    with pytest.raises(ValueError, match=r"/camera/wrist/image_raw image at step 0 of episode 2 is 12x12 px; "
                                         r"expected 16x16"):
        build_dataset([bag], tmp_path / "ds", ARM)
    with pytest.raises(ValueError, match=r"is 16x16 px; expected 24x24 \(--image-size\)"):
        build_dataset([bag], tmp_path / "ds", ARM.replace(image_size=24))
    assert leftovers(tmp_path) == ["bag"]


def test_existing_out_is_refused_and_kept(built, tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="exists"):
        build_dataset([built[0] / "robot_bag"], out, ARM)
    assert leftovers(tmp_path) == ["ds"] and (out / "keep.txt").read_text() == "mine"


def test_bag_without_a_complete_episode_is_refused(tmp_path):
    s = Session(t0=10**9)
    s.episode(0, [(Source.VLA, 4, 1)], (None, 0, 0))
    bag = s.write(tmp_path / "bag")
    with pytest.raises(ValueError, match=r"bag: no complete episode \(1 dropped: no end event"):
        build_dataset([bag], tmp_path / "ds", ARM)
    robot = robot_session().write(tmp_path / "robot")
    with pytest.raises(ValueError, match=r"no complete episode .*wrist/image_raw has no message at most 0.001 s"):
        build_dataset([robot], tmp_path / "ds", ARM.replace(max_age_s=0.001, cameras=("wrist",)))
    with pytest.raises(ValueError, match=r"ms per executed step .*--control-hz"):
        build_dataset([robot], tmp_path / "ds", ARM.replace(control_hz=10.0))
    assert leftovers(tmp_path) == ["bag", "robot"]
