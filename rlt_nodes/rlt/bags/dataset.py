"""Training datasets from session recordings: recorder bags (sim or robot sessions) -> the demo-dataset layout.

This module owns the rules that turn what a session published into training steps (`build_dataset`, used by
`rlt dataset build`). It reads, from each bag written by the recorder (`rlt.bags.recorder`, `rlt bag record`):

* `episode/events`            episodes: a START opens one, the first SUCCESS / FAILURE / TIMEOUT with its episode_id
                              ends it with that outcome. Dropped with a warning (never an error): an episode ended
                              by RESET before any outcome (cut short: its last pose is no goal and its outcome is
                              unknown), one without an end event (the recording stopped mid-episode), one whose
                              rows are incomplete (a `chunk_request` or its terminal report was not recorded) and one
                              with an observation missing (below). A RESET after the outcome (the sim driver's reset
                              before the next START) changes nothing. A bag with no complete episode is an error.
* `chunk_request`             the executed steps: each request reports the rows executed since the previous request
                              of its episode (`executed`, `sources`: VLA / ACTOR / HUMAN). Row k of a request at step
                              s (stamp t_s) is step k; a request re-sent with the same stamp and step counts once.
* `joint_states`              proprio: positions, then velocities, of the joint names in order (no velocities in the
                              message: zeros, as the VLA node reads it).
* `camera/<name>/image_raw`   rgb8, square, one size for every camera and bag.

Alignment: step k reported by the request at step s (stamp t_s) is observed s - k control periods before t_s, but
never before the stamp of the episode's previous request. In the sim (stamps on the control grid) that is exactly
the stamp of observation k; on a robot the executor stamps a request at the tick it commanded its last row, so it
is the observation a VLA pass at step k would have been given. Each step takes, per camera and for proprio, the latest
message whose header stamp is at or before that time and at most `max_age_s` older (else the episode is dropped).

Output: one rosbag2 folder in the layout `rlt.sim.demos` owns (so `load_demos` / `load_episodes` read it), without
the privileged topic; every step is one `action` message (ActionChunk, chunk_len 1) holding the executed row and its
source. Stamps are re-based on a control grid (episode k after episode k-1, as `record_demos` writes them); the
recording's bag, episode id and START stamp of every episode are in the metadata (`episode_list`). The folder is
written under a temporary name next to `out` and renamed into place at the end: an error leaves nothing behind, and
an existing `out` is refused.
It must not import rclpy or any message package.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import struct
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlt.bags.io import BagReader, BagWriter
from rlt.config import Config
from rlt.sim.demos import (
    EVENTS_TOPIC,
    JOINTS_TOPIC,
    METADATA_KEY,
    EpisodeWriter,
    camera_topic,
)
from rlt.types import Event, Source

REQUEST_TOPIC = "chunk_request"
IMAGE_TYPE = "sensor_msgs/msg/Image"
JOINTS_TYPE = "sensor_msgs/msg/JointState"
REQUEST_TYPE = "rlt_msgs/msg/ChunkRequest"
EVENT_TYPE = "rlt_msgs/msg/EpisodeEvent"
OUTCOMES: dict[int, str] = {Event.SUCCESS: "success", Event.FAILURE: "failure", Event.TIMEOUT: "timeout"}
ENDS = (Event.SUCCESS, Event.FAILURE, Event.TIMEOUT, Event.RESET)
SOURCES = frozenset(int(s) for s in Source)
MIN_STEP_RATIO = 0.9  # requests may not advance less than this fraction of a control period per executed step
Log = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class BuildConfig(Config):
    """How recorder bags become a dataset; empty values are taken from the first bag."""

    cameras: tuple[str, ...] = ()  # camera names (topics camera/<name>/image_raw); () = every camera of the first bag
    joint_names: tuple[str, ...] = ()  # proprio joints, in order; () = the one set of names on joint_states
    image_size: int = 0  # px, the side every image must have; 0 = the first image's
    instruction: str = ""  # the task instruction of every episode; "" = each START event's detail
    control_hz: float = 20.0  # rows executed per second in the recorded session (the executor's / sim's control_hz)
    max_age_s: float = 0.2  # s: an image or joint state older than this at a step's observation time is missing
    namespace: str = ""  # the session's ROS namespace in the bags; "" = where the bag's one chunk_request topic is

    def validate(self) -> None:
        self.require_positive("control_hz")
        if self.max_age_s < 0:
            self.fail("max_age_s", "must be >= 0")
        if self.image_size < 0:
            self.fail("image_size", "must be >= 0 (0 = the first image's size)")
        for name in ("cameras", "joint_names"):
            values = getattr(self, name)
            if len(set(values)) != len(values) or not all(values):
                self.fail(name, "has an empty or repeated name")


@dataclasses.dataclass
class RecordedEpisode:
    """One complete episode of a bag, as training steps; T = executed steps."""

    bag: str
    episode_id: int
    start_ns: int  # header stamp of its START in the recording
    outcome: str  # "success", "failure" or "timeout"
    instruction: str
    handoff_step: int  # step of the HANDOFF into the critical phase, -1 without
    obs_ns: np.ndarray  # int64[T], observation time of each step (recording's clock)
    actions: np.ndarray  # float32[T, D], executed rows (ActionChunk units)
    sources: np.ndarray  # uint8[T], rlt.types.Source of each row
    proprio: np.ndarray  # float32[T, 2J], joint positions then velocities
    pace_ns: np.ndarray  # float64[R], per request reporting rows: ns since the previous request / rows reported
    end_ns: int = 0  # header stamp of its end event (the outcome)
    # float32[2J]: the joint state at the end event, after the last executed row: the pose the goal entries learn
    final_proprio: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.float32))
    image_index: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # camera -> int64[T], message index
    images: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # camera -> uint8[T, S, S, 3]


class _Drop(Exception):
    """An episode that cannot be used; the message says why."""


def build_dataset(bags: Sequence[Path | str], out: Path | str, cfg: BuildConfig | None = None,
                  log: Log | None = None) -> dict[str, Any]:
    """Turn the recorder bags `bags` (in order) into the new dataset folder `out`; returns its metadata.

    `log` receives one line per bag read and per episode dropped (see the module docstring for the rules).
    Raises ValueError naming the bag and topic / episode for input that cannot make a dataset, FileExistsError if
    `out` exists; in both cases nothing is written.
    """
    cfg = cfg or BuildConfig()
    log = log or (lambda _line: None)
    out = Path(out)
    if not bags:
        raise ValueError("no bags given")
    _refuse_existing(out)
    state = _Shared(cfg)
    episodes: list[RecordedEpisode] = []
    dropped: list[dict[str, Any]] = []
    for bag in bags:
        kept, lost = _read_bag(Path(bag), state, log)
        episodes += kept
        dropped += lost
    info = _metadata(bags, episodes, dropped, state)
    _write_atomically(out, episodes, state, info)
    return info


class _Shared:
    """What every bag must agree on, fixed by the config or by the first bag."""

    def __init__(self, cfg: BuildConfig) -> None:
        self.cfg = cfg
        self.period_ns = round(1e9 / cfg.control_hz)
        self.cameras: tuple[str, ...] = cfg.cameras
        self.joint_names: tuple[str, ...] = cfg.joint_names
        self.image_size = cfg.image_size
        self.axis_names: tuple[str, ...] = ()
        self.image_size_from = "--image-size"  # where image_size came from, for errors


def _refuse_existing(out: Path) -> None:
    if out.exists() or out.is_symlink():
        raise FileExistsError(f"{out} exists; a dataset is written to a new folder (nothing was changed)")


# ---------------------------------------------------------------------------------------------- reading one bag
def _read_bag(path: Path, state: _Shared, log: Log) -> tuple[list[RecordedEpisode], list[dict[str, Any]]]:
    """Complete episodes of one bag with their images, and the dropped ones ({bag, episode_id, reason})."""
    log(f"reading {path}")
    if not path.exists():
        raise ValueError(f"{path}: no such bag")
    with BagReader(path) as bag:
        topics = _resolve_topics(bag.topics, path, state)
        events, requests, joints, images = _first_pass(bag, path, topics, state)
        dropped: list[dict[str, Any]] = []
        kept: list[RecordedEpisode] = []
        for record in _episodes(events, requests):
            try:
                episode = _steps(record, path, state)
                _observe(episode, joints, images, topics, state)
            except _Drop as exc:
                reason = f"{path}: episode {record['episode_id']} dropped: {exc}"
                log(f"warning: {reason}")
                dropped.append({"bag": str(path), "episode_id": record["episode_id"], "reason": str(exc)})
                continue
            kept.append(episode)
        if not kept:
            reasons = "; ".join(d["reason"] for d in dropped[:3]) or f"no START in {topics['events']}"
            raise ValueError(f"{path}: no complete episode ({len(dropped)} dropped: {reasons})")
        _check_rate(kept, path, state)
        _read_images(bag, path, kept, topics, state)
    return kept, dropped


def _resolve_topics(present: dict[str, str], path: Path, state: _Shared) -> dict[str, Any]:
    """The bag's topic names of the session's chunk_request, episode/events, joint_states and cameras."""
    listing = ", ".join(sorted(present)) or "none"
    if state.cfg.namespace:
        prefix = "/" + state.cfg.namespace.strip("/") + "/"
        prefix = "/" if prefix == "//" else prefix
    else:
        found = [t for t in present if t.lstrip("/") == REQUEST_TOPIC or t.endswith("/" + REQUEST_TOPIC)]
        if len(found) > 1:
            raise ValueError(f"{path}: several {REQUEST_TOPIC} topics ({', '.join(sorted(found))}): pass the session's "
                             "namespace (--namespace)")
        prefix = found[0][: -len(REQUEST_TOPIC)] if found else "/"

    def need(name: str, msgtype: str, why: str) -> str:
        topic = prefix + name
        if topic not in present:
            raise ValueError(f"{path}: no topic {topic} ({msgtype}), which the dataset needs for {why}; "
                             f"the bag has: {listing}")
        if present[topic] != msgtype:
            raise ValueError(f"{path}: topic {topic} is {present[topic]}, expected {msgtype}")
        return topic

    topics: dict[str, Any] = {
        "requests": need(REQUEST_TOPIC, REQUEST_TYPE, "the executed actions and their sources"),
        "events": need(EVENTS_TOPIC, EVENT_TYPE, "the episodes and their outcomes"),
        "joints": need(JOINTS_TOPIC, JOINTS_TYPE, "the proprio"),
    }
    if not state.cameras:
        head, tail = prefix + "camera/", "/image_raw"
        names = sorted(t[len(head) : -len(tail)] for t, m in present.items()
                       if m == IMAGE_TYPE and t.startswith(head) and t.endswith(tail)
                       and "/" not in t[len(head) : -len(tail)])
        if not names:
            raise ValueError(f"{path}: no camera topic {head}<name>{tail} ({IMAGE_TYPE}), which the dataset needs "
                             f"for the images; the bag has: {listing}")
        state.cameras = tuple(names)
    topics["cameras"] = {c: need(camera_topic(c), IMAGE_TYPE, f"camera {c}'s images") for c in state.cameras}
    return topics


def _first_pass(bag: BagReader, path: Path, topics: dict[str, Any], state: _Shared) -> tuple[
        list[tuple[int, Any]], dict[int, list[tuple[int, Any]]], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Events, requests per episode id (both (header stamp, message), stamp order), joint states
    {stamp: int64[M], proprio: float32[M, 2J]} and each camera's images {stamp: int64[N], index: int64[N] (message
    index on its topic)}, both in stamp order."""
    events: list[tuple[int, Any]] = []
    requests: dict[int, list[tuple[int, Any]]] = defaultdict(list)
    joint_msgs: list[tuple[int, Any]] = []
    camera_of = {topic: c for c, topic in topics["cameras"].items()}
    image_stamps: dict[str, list[int]] = {c: [] for c in topics["cameras"]}
    small = (topics["events"], topics["requests"], topics["joints"])
    msgtypes = bag.topics
    for topic, _, raw in bag.raw_messages([*small, *camera_of]):
        if topic in camera_of:
            image_stamps[camera_of[topic]].append(_header_stamp_ns(raw))  # no image decoding on this pass
            continue
        msg = bag.store.deserialize_cdr(raw, msgtypes[topic])
        stamp = _stamp(msg.header)
        if topic == topics["events"]:
            events.append((stamp, msg))
        elif topic == topics["requests"]:
            requests[int(msg.episode_id)].append((stamp, msg))
        else:
            joint_msgs.append((stamp, msg))
    events.sort(key=lambda item: item[0])  # stable: publish order among equal stamps
    for items in requests.values():
        items.sort(key=lambda item: item[0])
    images = {}
    for camera, stamps in image_stamps.items():
        order = np.argsort(np.array(stamps, np.int64), kind="stable")  # int64[N]
        images[camera] = {"stamp": np.array(stamps, np.int64)[order], "index": order}
    return events, requests, _joint_states(joint_msgs, path, topics["joints"], state), images


def _joint_states(msgs: list[tuple[int, Any]], path: Path, topic: str, state: _Shared) -> dict[str, np.ndarray]:
    """{stamp: int64[M], proprio: float32[M, 2J]} in stamp order, of the messages naming every joint (others are
    another publisher's joints, e.g. a gripper's). Without --joint-names the topic must carry one set of names."""
    if not state.joint_names:
        sets = list(dict.fromkeys(tuple(msg.name) for _, msg in msgs))
        if len(sets) != 1 or not sets[0]:
            found = ", ".join(str(list(names)) for names in sets[:4]) or "no messages"
            raise ValueError(f"{path}: {topic} carries {len(sets)} sets of joint names ({found}); pass the proprio "
                             "joints (--joint-names)")
        state.joint_names = sets[0]
    stamps, proprio = [], []
    for stamp, msg in msgs:
        row = _proprio(msg, path, topic, state.joint_names)
        if row is not None:
            stamps.append(stamp)
            proprio.append(row)
    if not proprio:
        seen = sorted({name for _, msg in msgs for name in msg.name})
        raise ValueError(f"{path}: no {topic} message names all of the joints {list(state.joint_names)}; the "
                         f"messages name {seen or 'nothing'} (--joint-names)")
    order = np.argsort(np.array(stamps, np.int64), kind="stable")
    return {"stamp": np.array(stamps, np.int64)[order], "proprio": np.stack(proprio)[order]}


def _proprio(msg: Any, path: Path, topic: str, joint_names: tuple[str, ...]) -> np.ndarray | None:
    """float32[2J] positions then velocities of `joint_names`, or None for a message without all of them."""
    names = list(msg.name)
    index = {name: i for i, name in enumerate(names)}
    if any(name not in index for name in joint_names):
        return None
    position, velocity = np.asarray(msg.position, np.float64), np.asarray(msg.velocity, np.float64)
    if len(position) != len(names) or len(velocity) not in (0, len(names)):
        raise ValueError(f"{path}: {topic} message with {len(names)} names, {len(position)} positions and "
                         f"{len(velocity)} velocities; expected one position (and velocity, or none) per name")
    order = [index[name] for name in joint_names]
    velocity = velocity[order] if len(velocity) else np.zeros(len(order))  # the VLA node's reading of no velocities
    return np.concatenate([position[order], velocity]).astype(np.float32)  # float32[2J]


def _episodes(events: list[tuple[int, Any]],
              requests: dict[int, list[tuple[int, Any]]]) -> list[dict[str, Any]]:
    """Episodes in START order: {episode_id, start_ns, instruction, end (event or None), end_ns, handoff_step,
    requests}. An episode id used again (a restarted driver) is a new episode from its new START."""
    records: list[dict[str, Any]] = []
    current: dict[int, dict[str, Any]] = {}
    for stamp, event in events:
        eid, kind = int(event.episode_id), int(event.event)
        if kind == Event.START:
            current[eid] = {"episode_id": eid, "start_ns": stamp, "instruction": str(event.detail), "end": None,
                            "end_ns": None, "handoff_step": -1}
            records.append(current[eid])
            continue
        record = current.get(eid)
        if record is None or record["end"] is not None:
            continue  # an event of an episode the bag did not see start, or after its outcome (the sim's RESET)
        if kind in ENDS:
            record["end"], record["end_ns"] = kind, stamp
        elif kind == Event.HANDOFF:
            record["handoff_step"] = int(event.step)
    for k, record in enumerate(records):
        later = [r["start_ns"] for r in records[k + 1 :] if r["episode_id"] == record["episode_id"]]
        until = min(later) if later else None
        record["requests"] = [(s, m) for s, m in requests.get(record["episode_id"], [])
                              if s >= record["start_ns"] and (until is None or s < until)
                              and (record["end_ns"] is None or s <= record["end_ns"])]
    return records


def _steps(record: dict[str, Any], path: Path, state: _Shared) -> RecordedEpisode:
    """The executed steps of one episode from its requests, with their observation times."""
    eid = record["episode_id"]
    if record["end"] is None:
        raise _Drop("no end event (SUCCESS, FAILURE, TIMEOUT or RESET): the recording stopped mid-episode")
    if record["end"] == Event.RESET:
        raise _Drop("ended by RESET without an outcome (cut short)")
    actions: list[np.ndarray] = []
    sources: list[int] = []
    obs_ns: list[int] = []
    pace: list[float] = []  # ns between consecutive requests per step reported
    expected, previous_ns, terminal = 0, record["start_ns"], 0
    seen: set[tuple[int, int]] = set()
    for stamp, msg in record["requests"]:
        step = int(msg.step)
        if (stamp, step) in seen:
            continue  # a re-sent request (the sim driver repeats one nobody answered)
        seen.add((stamp, step))
        axes, executed = tuple(msg.axis_names), np.asarray(msg.executed, np.float32)
        if axes or len(executed):
            state.axis_names = state.axis_names or axes
            if axes != state.axis_names:
                raise ValueError(f"{path}: episode {eid}: {REQUEST_TOPIC} at step {step} has axis_names "
                                 f"{list(axes)}, expected {list(state.axis_names)} (as the earlier requests)")
        n, d = divmod(len(executed), len(axes)) if axes else (0, len(executed))
        if d or len(msg.sources) != n or not np.isfinite(executed).all():
            raise ValueError(f"{path}: episode {eid}: {REQUEST_TOPIC} at step {step} is malformed: {len(executed)} "
                             f"executed values, {len(msg.sources)} sources for {len(axes)} axes (expected finite "
                             "rows of len(axis_names) values and one source per row)")
        if step - n > expected:
            raise _Drop(f"{REQUEST_TOPIC} rows of steps {expected}..{step - n - 1} are not in the recording (the "
                        f"request at step {step} reports {n} rows)")
        if step - n < expected:
            raise _Drop(f"the {REQUEST_TOPIC} at step {step} reports {n} rows, back to step {step - n}, but earlier "
                        f"requests reported steps up to {expected - 1}")
        bad = [int(s) for s in msg.sources if int(s) not in SOURCES]
        if bad:
            raise ValueError(f"{path}: episode {eid}: {REQUEST_TOPIC} at step {step} has unknown sources {bad}")
        rows = executed.reshape(n, len(axes))  # float32[n, D]
        for j in range(n):
            obs_ns.append(max(previous_ns, stamp - (n - j) * state.period_ns))
        if n:
            pace.append((stamp - previous_ns) / n)
        actions += list(rows)
        sources += [int(s) for s in msg.sources]
        expected, previous_ns, terminal = step, stamp, int(msg.terminal)
    if not terminal:
        raise _Drop(f"its terminal {REQUEST_TOPIC} (the last rows, with the outcome) is not in the recording")
    if not actions:
        raise _Drop("no executed step")
    return RecordedEpisode(
        bag=str(path),
        episode_id=eid,
        start_ns=record["start_ns"],
        outcome=OUTCOMES[record["end"]],
        instruction=state.cfg.instruction or record["instruction"],
        handoff_step=record["handoff_step"],
        obs_ns=np.array(obs_ns, np.int64),
        actions=np.stack(actions).astype(np.float32),
        sources=np.array(sources, np.uint8),
        proprio=np.zeros((0, 2 * len(state.joint_names)), np.float32),
        pace_ns=np.array(pace),
        end_ns=record["end_ns"],
    )


def _latest(stamps: np.ndarray, at: np.ndarray, max_age_ns: int) -> tuple[np.ndarray, int]:
    """Index into sorted int64[M] `stamps` of the latest at or before each of int64[T] `at`, and the first position
    of `at` without one no older than `max_age_ns` (-1 if every one has it)."""
    pos = np.searchsorted(stamps, at, side="right") - 1  # int64[T]
    ok = pos >= 0
    ok[ok] = at[ok] - stamps[pos[ok]] <= max_age_ns
    return pos, int(np.argmin(ok)) if not ok.all() else -1


def _observe(episode: RecordedEpisode, joints: dict[str, np.ndarray], images: dict[str, dict[str, np.ndarray]],
             topics: dict[str, Any], state: _Shared) -> None:
    """Fill the episode's proprio and the message index of each step's image, per camera."""
    max_age_ns = round(state.cfg.max_age_s * 1e9)

    def missing(topic: str, t: int) -> _Drop:
        return _Drop(f"{topic} has no message at most {state.cfg.max_age_s} s before step {t}'s observation "
                     f"(stamp {episode.obs_ns[t]} ns; header stamps are compared)")

    pos, bad = _latest(joints["stamp"], episode.obs_ns, max_age_ns)
    if bad >= 0:
        raise missing(topics["joints"], bad)
    episode.proprio = joints["proprio"][pos]
    # the pose at the outcome (a SUCCESS: the peg in the hole), the last observation if no joint state is that fresh
    end, late = _latest(joints["stamp"], np.array([episode.end_ns], np.int64), max_age_ns)
    episode.final_proprio = (joints["proprio"][end[0]] if late < 0 else episode.proprio[-1]).astype(np.float32)
    for camera, topic in topics["cameras"].items():
        pos, bad = _latest(images[camera]["stamp"], episode.obs_ns, max_age_ns)
        if bad >= 0:
            raise missing(topic, bad)
        episode.image_index[camera] = images[camera]["index"][pos]


def _check_rate(episodes: list[RecordedEpisode], path: Path, state: _Shared) -> None:
    """Refuse a control rate the requests contradict: rows run at most one per control period, so a request
    cannot come sooner than one period per step it reports after the previous one."""
    pace = np.median(np.concatenate([e.pace_ns for e in episodes]))
    if pace < MIN_STEP_RATIO * state.period_ns:
        raise ValueError(f"{path}: {REQUEST_TOPIC} stamps advance {pace / 1e6:.1f} ms per executed step "
                         f"(median), but control_hz {state.cfg.control_hz:g} means "
                         f"{state.period_ns / 1e6:.1f} ms per step: pass the rate the session ran at (--control-hz)")


def _read_images(bag: BagReader, path: Path, episodes: list[RecordedEpisode], topics: dict[str, Any],
                 state: _Shared) -> None:
    """Second pass: decode only the images some step uses, check them, and fill `episode.images`."""
    wanted: dict[str, set[int]] = {c: set() for c in topics["cameras"]}
    for episode in episodes:
        for camera, index in episode.image_index.items():
            wanted[camera].update(index.tolist())
    camera_of = {topic: c for c, topic in topics["cameras"].items()}
    decoded: dict[str, dict[int, np.ndarray]] = {c: {} for c in wanted}
    count: Counter[str] = Counter()
    for topic, _, raw in bag.raw_messages(list(camera_of)):
        camera = camera_of[topic]
        index = count[camera]
        count[camera] += 1
        if index in wanted[camera]:
            decoded[camera][index] = _image(bag.store.deserialize_cdr(raw, IMAGE_TYPE), path, topic)
    for episode in episodes:
        for camera, index in episode.image_index.items():
            frames = [decoded[camera][i] for i in index.tolist()]
            for t, image in enumerate(frames):
                _check_size(image, path, topics["cameras"][camera], episode.episode_id, t, state)
            episode.images[camera] = np.stack(frames)  # uint8[T, S, S, 3]


def _image(msg: Any, path: Path, topic: str) -> np.ndarray:
    """uint8[H, W, 3] of an rgb8 Image (rows may be padded: `step` >= 3 * width)."""
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if msg.encoding != "rgb8":
        raise ValueError(f"{path}: {topic} image with encoding {msg.encoding!r}; expected rgb8 (what the VLA reads)")
    data = np.asarray(msg.data, np.uint8)
    if step < 3 * w or len(data) < h * step:
        raise ValueError(f"{path}: {topic} image of {h}x{w} px with step {step} and {len(data)} bytes; expected "
                         f"step >= {3 * w} and {h} rows")
    return data[: h * step].reshape(h, step)[:, : 3 * w].reshape(h, w, 3).copy()


def _check_size(image: np.ndarray, path: Path, topic: str, episode_id: int, t: int, state: _Shared) -> None:
    h, w = image.shape[:2]
    if not state.image_size:
        if h != w:
            raise ValueError(f"{path}: {topic} image at step {t} of episode {episode_id} is {h}x{w} px; the VLA takes "
                             "square images (record the camera's square copy, camera.vla_size)")
        state.image_size, state.image_size_from = h, f"the first image ({path}, {topic})"
    if (h, w) != (state.image_size, state.image_size):
        raise ValueError(f"{path}: {topic} image at step {t} of episode {episode_id} is {h}x{w} px; expected "
                         f"{state.image_size}x{state.image_size} ({state.image_size_from})")


def _header_stamp_ns(raw: bytes | memoryview) -> int:
    """Header stamp of a serialized message that starts with a std_msgs/Header (CDR: 4-byte encapsulation, then
    stamp.sec int32, stamp.nanosec uint32)."""
    little = raw[1] == 1  # encapsulation 0x0001: CDR little endian
    sec, nanosec = struct.unpack_from("<iI" if little else ">iI", raw, 4)
    return sec * 10**9 + nanosec


def _stamp(msg_header: Any) -> int:
    return int(msg_header.stamp.sec) * 10**9 + int(msg_header.stamp.nanosec)


# ---------------------------------------------------------------------------------------------- writing
def _metadata(bags: Sequence[Path | str], episodes: list[RecordedEpisode], dropped: list[dict[str, Any]],
              state: _Shared) -> dict[str, Any]:
    outcomes = Counter(e.outcome for e in episodes)
    instructions = Counter(e.instruction for e in episodes if e.instruction)
    human = [int((e.sources == Source.HUMAN).sum()) for e in episodes]
    return {
        "built_from": "recorder bags",
        "bags": [str(b) for b in bags],
        "cameras": list(state.cameras),
        "image_size": state.image_size,
        "joint_names": list(state.joint_names),
        "axis_names": list(state.axis_names),
        "instruction": state.cfg.instruction or (instructions.most_common(1)[0][0] if instructions else ""),
        "control_hz": state.cfg.control_hz,
        "max_age_s": state.cfg.max_age_s,
        "episodes": len(episodes),
        "steps": sum(len(e.actions) for e in episodes),
        "successes": outcomes["success"],
        "failures": outcomes["failure"],
        "timeouts": outcomes["timeout"],
        "human_steps": sum(human),
        "intervened_episodes": sum(n > 0 for n in human),
        "dropped": dropped,
        "episode_list": [
            {"bag": e.bag, "episode_id": e.episode_id, "start_ns": e.start_ns, "outcome": e.outcome,
             "steps": len(e.actions), "human_steps": n, "handoff_step": e.handoff_step,
             "final_proprio": [float(v) for v in e.final_proprio]}
            for e, n in zip(episodes, human, strict=True)
        ],
    }


def _write_atomically(out: Path, episodes: list[RecordedEpisode], state: _Shared, info: dict[str, Any]) -> None:
    """Write the dataset under a temporary name next to `out`, then rename it into place."""
    _refuse_existing(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        staged = work / out.name  # the MCAP file is named after its folder
        with BagWriter(staged) as bag:
            _write_episodes(bag, episodes, state)
            bag.set_metadata(METADATA_KEY, json.dumps(info))
        _refuse_existing(out)  # appeared while writing: keep it, drop ours
        os.rename(staged, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _write_episodes(bag: BagWriter, episodes: list[RecordedEpisode], state: _Shared) -> None:
    """The `rlt.sim.demos` layout (`EpisodeWriter`), without the privileged topic."""
    writer = EpisodeWriter(bag, state.cameras, state.period_ns, state.joint_names, state.axis_names, privileged=False)
    for k, episode in enumerate(episodes):
        writer.write(k, episode.images, episode.proprio, episode.actions, episode.sources, episode.outcome,
                     episode.instruction)
