"""Learner journal: record round trip, torn and corrupt tails, checkpoint + journal resume exactly once, duplicate
dropping, weights versions across restarts, replay-buffer keys, and a real SIGKILL of a learner process."""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rlt.rl import journal
from rlt.rl import learner as learner_module
from rlt.rl.config import RLConfig
from rlt.rl.learner import LATEST, Learner
from rlt.rl.replay import ReplayBuffer
from rlt.types import Transition

CFG = RLConfig(token_dim=6, proprio_dim=3, chunk_len=4, action_dim=2, action_scale=(0.01, 0.1), hidden=(16, 16),
               batch_size=16, learning_starts=20, utd=2.0, weights_every=10, buffer_capacity=50_000, seed=1)


def make_transition(episode: int, step: int, cfg: RLConfig = CFG) -> Transition:
    """Values derived from (episode, step) only, so any process can recompute what a key must hold."""
    rng = np.random.default_rng([episode, step])
    c, d, z, p = cfg.chunk_len, cfg.action_dim, cfg.token_dim, cfg.proprio_dim
    scale = np.asarray(cfg.action_scale, np.float32)
    return Transition(
        rl_token=rng.normal(size=z), proprio=rng.normal(size=p), action=rng.uniform(-1, 1, (c, d)) * scale,
        reference=rng.uniform(-1, 1, (c, d)) * scale, rewards=rng.uniform(size=c), done=bool(rng.uniform() < 0.2),
        intervened=bool(rng.uniform() < 0.3), next_rl_token=rng.normal(size=z), next_proprio=rng.normal(size=p),
        next_reference=rng.uniform(-1, 1, (c, d)) * scale, episode_id=episode, step=step,
        stamp_ns=1_700_000_000_000_000_000 + 1000 * episode + step,
    )


def keys_of(learner: Learner) -> list[tuple[int, int]]:
    return [tuple(k) for k in learner.buffer.keys().tolist()]


def tokens_of(learner: Learner) -> np.ndarray:  # float32[N, Z]: rl_token is stored unscaled
    state = learner.buffer.layout.state
    return learner.buffer.rows()[:, state.start : state.start + CFG.token_dim]


def assert_holds_exactly(learner: Learner, keys: list[tuple[int, int]]) -> None:
    """The buffer holds exactly `keys` in this order, each with the values its key generates."""
    assert keys_of(learner) == keys
    expected = np.stack([make_transition(e, s).rl_token for e, s in keys])
    assert np.array_equal(tokens_of(learner), expected)
    reference = ReplayBuffer(CFG.buffer_capacity, CFG.token_dim, CFG.proprio_dim, CFG.chunk_len, CFG.action_dim,
                             units=learner.units)
    for e, s in keys:
        reference.add(make_transition(e, s))
    assert np.array_equal(learner.buffer.rows(), reference.rows())  # every stored column, not only the token


def write_records(path: Path, records: list[bytes]) -> list[int]:
    """Write `records` to `path`; returns each record's start offset."""
    starts, at = [], 0
    for r in records:
        starts.append(at)
        at += len(r)
    path.write_bytes(b"".join(records))
    return starts


def transition_record(episode: int, step: int) -> bytes:
    return journal.encode_record(journal.Kind.TRANSITION, journal.encode_transition(make_transition(episode, step)))


def read_keys(directory: Path, first: int = 0) -> tuple[list[tuple[int, int]], journal.JournalReader]:
    reader = journal.JournalReader(directory, first)
    keys = [(r.transition.episode_id, r.transition.step) for r in reader if r.transition is not None]
    return keys, reader


# ---------------------------------------------------------------------- records
def test_round_trip_keeps_every_transition_field_bit_exact(tmp_path):
    t = make_transition(2**40 + 3, 77)
    t.rl_token[0], t.proprio[1], t.rewards[2] = -0.0, np.float32(1e-42), np.float32(3.4e38)  # -0, denormal, near max
    t.done, t.intervened, t.stamp_ns = True, True, 2**62 + 5
    other = dataclasses.replace(make_transition(5, 5), episode_id=-1, step=-1, stamp_ns=0)  # negative ints too
    log = journal.Journal(tmp_path, 0)
    log.append_transition(t)
    log.append_version(2**63 + 11)
    log.append_transition(other)
    log.close()
    records = list(journal.JournalReader(tmp_path))
    assert [r.kind for r in records] == [journal.Kind.TRANSITION, journal.Kind.VERSION, journal.Kind.TRANSITION]
    assert records[1].version == 2**63 + 11 and [r.segment for r in records] == [0, 0, 0] and records[0].offset == 0
    for original, record in ((t, records[0]), (other, records[2])):
        back = record.transition
        for field in dataclasses.fields(Transition):
            a, b = getattr(original, field.name), getattr(back, field.name)
            if isinstance(a, np.ndarray):
                assert b.dtype == np.float32 and b.shape == a.shape, field.name
                assert np.array_equal(a.view(np.uint32), b.view(np.uint32)), field.name  # bit for bit (-0.0 too)
            else:
                assert type(b) is type(a) and b == a, field.name


def test_append_is_one_write_and_fsyncs_only_on_schedule_and_close(tmp_path, monkeypatch):
    log = journal.Journal(tmp_path, 0, fsync_every_s=3600.0)
    writes: list[int] = []
    syncs: list[int] = []
    real_write, real_fsync = os.write, os.fsync
    mine = log._fd
    monkeypatch.setattr(os, "write", lambda fd, data: (fd == mine and writes.append(fd)) or real_write(fd, data))
    monkeypatch.setattr(os, "fsync", lambda fd: (fd == mine and syncs.append(fd)) or real_fsync(fd))
    for step in range(20):
        log.append_transition(make_transition(0, step))
    assert len(writes) == 20 and syncs == []
    log.fsync_every_s = 0.0
    log.append_version(1)
    assert len(writes) == 21 and len(syncs) == 1
    log.close()
    assert len(syncs) == 2
    monkeypatch.undo()
    assert len(read_keys(tmp_path)[0]) == 20


def test_torn_tail_at_every_byte_of_the_last_record_is_dropped(tmp_path):
    records = [transition_record(0, 0), journal.encode_record(journal.Kind.VERSION, b"\x07" + bytes(7)),
               transition_record(0, 1), transition_record(0, 2)]
    whole = b"".join(records)
    last = len(whole) - len(records[-1])
    nxt = transition_record(1, 0)
    for cut in range(last + 1, len(whole)):  # every strict prefix of the last record, from 1 byte on
        folder = tmp_path / str(cut)
        folder.mkdir()
        (folder / "journal_000000.bin").write_bytes(whole[:cut])
        (folder / "journal_000001.bin").write_bytes(nxt)  # a later segment is still read
        keys, reader = read_keys(folder)
        assert keys == [(0, 0), (0, 1), (1, 0)], cut
        assert reader.records == 4 and len(reader.torn) == 1, cut
        torn = reader.torn[0]
        assert torn.path.name == "journal_000000.bin" and torn.offset == last and torn.dropped_bytes == cut - last
        assert ("short header" if cut - last < journal.HEADER.size else "short payload") in torn.reason
    (tmp_path / "whole").mkdir()
    (tmp_path / "whole" / "journal_000000.bin").write_bytes(whole)
    keys, reader = read_keys(tmp_path / "whole")
    assert keys == [(0, 0), (0, 1), (0, 2)] and reader.torn == []


def test_corrupt_record_in_the_middle_drops_the_rest_of_its_segment_and_says_where(tmp_path):
    starts = write_records(tmp_path / "journal_000000.bin", [transition_record(0, s) for s in range(5)])
    write_records(tmp_path / "journal_000001.bin", [transition_record(1, s) for s in range(2)])
    data = bytearray((tmp_path / "journal_000000.bin").read_bytes())
    data[starts[2] + journal.HEADER.size + 40] ^= 0x01  # one bit of record 2's payload
    (tmp_path / "journal_000000.bin").write_bytes(bytes(data))
    keys, reader = read_keys(tmp_path)
    assert keys == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [(t.path.name, t.offset, t.dropped_bytes, t.reason) for t in reader.torn] == [
        ("journal_000000.bin", starts[2], len(data) - starts[2], "crc mismatch")]
    data[starts[1]] = ord("X")  # and a wrong magic before it
    (tmp_path / "journal_000000.bin").write_bytes(bytes(data))
    keys, reader = read_keys(tmp_path)
    assert keys == [(0, 0), (1, 0), (1, 1)] and reader.torn[0].offset == starts[1] and "magic" in reader.torn[0].reason
    learner = Learner(CFG)
    summary = learner.resume(tmp_path)
    assert_holds_exactly(learner, [(0, 0), (1, 0), (1, 1)])
    assert "no checkpoint + 3 journaled transitions" in summary
    assert f"1 torn record dropped (journal_000000.bin at byte {starts[1]}: bad magic" in summary, summary
    assert "journaling to journal_000002.bin" in summary
    learner.close()


def test_segments_are_read_from_a_number_on_and_pruned_below_one(tmp_path):
    for n in (0, 1, 3):
        write_records(journal.segment_path(tmp_path, n), [transition_record(n, 0)])
    (tmp_path / "journal_x.bin").write_bytes(b"not a segment")
    assert [n for n, _ in journal.segments(tmp_path)] == [0, 1, 3]
    assert read_keys(tmp_path, 1)[0] == [(1, 0), (3, 0)]
    assert [p.name for p in journal.prune(tmp_path, 3)] == ["journal_000000.bin", "journal_000001.bin"]
    assert [n for n, _ in journal.segments(tmp_path)] == [3]
    with pytest.raises(FileExistsError):
        journal.Journal(tmp_path, 3)  # a segment is never appended to after a restart


# ---------------------------------------------------------------------- learner: checkpoint + journal
def test_resume_after_crashes_around_a_checkpoint_holds_every_transition_once(tmp_path, monkeypatch):
    a = Learner(CFG)
    assert a.resume(tmp_path).startswith("no checkpoint + 0 journaled transitions")
    expected = [(0, s) for s in range(30)]
    for e, s in expected:
        assert a.add(make_transition(e, s))
    a.train(3)
    a.save_checkpoint(tmp_path)  # covers episode 0; journal now at segment 1
    assert [n for n, _ in journal.segments(tmp_path)] == [1]
    more = [(1, s) for s in range(20)]
    for e, s in more:
        a.add(make_transition(e, s))
    latest = (tmp_path / LATEST).read_text()

    def crash(*_: object) -> None:
        raise KeyboardInterrupt("killed before LATEST was replaced")

    with monkeypatch.context() as m:
        m.setattr(learner_module, "_write_atomic", crash)
        with pytest.raises(KeyboardInterrupt):
            a.save_checkpoint(tmp_path)  # rotated to segment 2, but LATEST still names the first checkpoint
    assert (tmp_path / LATEST).read_text() == latest
    assert [n for n, _ in journal.segments(tmp_path)] == [1, 2]
    last = [(2, s) for s in range(15)]
    for e, s in last:
        a.add(make_transition(e, s))  # into segment 2; then the process "dies" (a is never closed or saved)

    b = Learner(CFG)
    summary = b.resume(tmp_path)
    assert_holds_exactly(b, expected + more + last)
    assert b.buffer.added == 65 and b.updates == 3 and b.duplicates == 0
    assert summary.startswith(f"checkpoint {latest} (3 updates, 30 transitions) + 35 journaled transitions, ")
    assert "torn" not in summary and summary.endswith("journaling to journal_000003.bin")

    with monkeypatch.context() as m:  # a crash after LATEST was replaced, before the old segments were deleted
        m.setattr(journal, "prune", crash)
        with pytest.raises(KeyboardInterrupt):
            b.save_checkpoint(tmp_path)
    assert (tmp_path / LATEST).read_text() != latest and [n for n, _ in journal.segments(tmp_path)] == [1, 2, 3, 4]
    b.add(make_transition(3, 0))
    c = Learner(CFG)
    assert "65 transitions) + 1 journaled transitions" in c.resume(tmp_path)
    assert_holds_exactly(c, [*expected, *more, *last, (3, 0)])
    assert [n for n, _ in journal.segments(tmp_path)] == [4, 5]  # resume deleted what the checkpoint covers
    c.save_checkpoint(tmp_path)
    c.close()
    assert [n for n, _ in journal.segments(tmp_path)] == [6]
    d = Learner(CFG)
    d.resume(tmp_path)
    assert_holds_exactly(d, [*expected, *more, *last, (3, 0)])
    d.close()


def test_duplicates_after_resume_are_dropped_but_new_data_kept(tmp_path):
    a = Learner(CFG)
    a.resume(tmp_path)
    for s in range(10):
        a.add(make_transition(0, s))
    a.save_checkpoint(tmp_path)
    for s in range(10, 15):
        a.add(make_transition(0, s))
    b = Learner(CFG)
    b.resume(tmp_path)
    assert [b.add(make_transition(0, s)) for s in range(5, 15)] == [False] * 10  # re-delivered after the restart
    assert b.duplicates == 10 and len(b.buffer) == 15
    assert b.add(make_transition(0, 15)) and b.add(make_transition(1, 0)) and not b.add(make_transition(1, 0))
    assert b.duplicates == 11
    b.close()
    b.save_checkpoint(tmp_path)  # after close: the checkpoint covers every segment
    assert journal.segments(tmp_path) == []
    c = Learner(CFG)
    assert "17 transitions) + 0 journaled transitions" in c.resume(tmp_path)
    assert_holds_exactly(c, [*((0, s) for s in range(16)), (1, 0)])
    assert c.duplicates == 0 and not c.add(make_transition(1, 0))
    with pytest.raises(RuntimeError, match="resume once"):
        c.resume(tmp_path)
    c.close()
    plain = Learner(CFG)  # without resume: every transition is stored, as before the journal existed
    assert plain.add(make_transition(0, 0)) and plain.add(make_transition(0, 0)) and len(plain.buffer) == 2


def test_weights_versions_strictly_increase_across_restarts(tmp_path):
    a = Learner(CFG)
    assert "weights continue after v0" in a.resume(tmp_path)
    assert [a.next_weights_version() for _ in range(3)] == [1, 2, 3]
    a.save_checkpoint(tmp_path)
    assert [a.next_weights_version() for _ in range(2)] == [4, 5]  # after the checkpoint: only in the journal
    b = Learner(CFG)  # a crashed
    assert "weights continue after v5" in b.resume(tmp_path)
    assert b.next_weights_version() == 6 and b.weights_version == 6
    b.save_checkpoint(tmp_path)
    b.close()
    c = Learner(CFG)
    assert "weights continue after v6" in c.resume(tmp_path)
    assert c.next_weights_version() == 7
    c.close()
    plain = Learner(CFG)
    assert [plain.next_weights_version() for _ in range(2)] == [1, 2]


# ---------------------------------------------------------------------- replay-buffer keys
def test_replay_keys_follow_the_ring_and_survive_save_load(tmp_path):
    buf = ReplayBuffer(3, CFG.token_dim, CFG.proprio_dim, CFG.chunk_len, CFG.action_dim)
    for s in range(5):
        buf.add(make_transition(7, s))
    assert buf.keys().dtype == np.int64 and buf.keys().tolist() == [[7, 2], [7, 3], [7, 4]]
    buf.add_rows(np.stack([buf.pack(make_transition(8, 0))]))  # rows without keys
    buf.add_rows(np.stack([buf.pack(make_transition(8, 1))]), np.array([[8, 1]]))
    assert buf.keys().tolist() == [[7, 4], [-1, -1], [8, 1]]
    buf.save(tmp_path / "replay.npz")
    other = ReplayBuffer(3, CFG.token_dim, CFG.proprio_dim, CFG.chunk_len, CFG.action_dim)
    other.load(tmp_path / "replay.npz")
    assert other.keys().tolist() == buf.keys().tolist() and np.array_equal(other.rows(), buf.rows())
    small = ReplayBuffer(2, CFG.token_dim, CFG.proprio_dim, CFG.chunk_len, CFG.action_dim)
    small.load(tmp_path / "replay.npz")
    assert small.keys().tolist() == [[-1, -1], [8, 1]]
    with np.load(tmp_path / "replay.npz") as f:  # a file written before keys were kept
        np.savez(tmp_path / "old.npz", header=f["header"], rows=f["rows"])
    other.load(tmp_path / "old.npz")
    assert other.keys().tolist() == [[-1, -1]] * 3 and np.array_equal(other.rows(), buf.rows())


# ---------------------------------------------------------------------- a real SIGKILL
CHILD = """
import sys
sys.path.insert(0, {tests!r})
from test_rl_journal import CFG, make_transition
from rlt.rl.learner import Learner
learner = Learner(CFG)
learner.resume({directory!r})
print("ready", flush=True)
k = 0
while True:  # killed within a second: far below the buffer's capacity
    episode, step = divmod(k, 25)
    if learner.add(make_transition(episode, step)):
        sys.stdout.write(f"{{episode}} {{step}}\\n")
        sys.stdout.flush()
    if k % 97 == 96:
        learner.save_checkpoint({directory!r})
    k += 1
"""


def test_sigkill_at_a_random_moment_loses_and_duplicates_nothing(tmp_path):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    code = CHILD.format(tests=str(Path(__file__).parent), directory=str(tmp_path))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(journal.__file__).resolve().parents[2]),
                                                       os.environ.get("PYTHONPATH", "")]))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    try:
        assert child.stdout.readline() == "ready\n"
        lines.append(child.stdout.readline())  # adding has begun
        assert lines[0], f"the child ended early (seed {seed})"
        time.sleep(rng.uniform(0.0, 0.5))  # a few thousand adds and a few dozen checkpoints at most
    finally:
        child.send_signal(signal.SIGKILL)
        rest = child.stdout.read()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    lines += rest.splitlines(keepends=True)
    reported = [tuple(map(int, line.split())) for line in lines if line.endswith("\n")]
    assert reported

    learner = Learner(CFG)
    summary = learner.resume(tmp_path)
    held = keys_of(learner)
    assert len(held) == len(set(held)), f"duplicated keys (seed {seed}): {summary}"
    lost = set(reported) - set(held)
    assert not lost, f"{len(lost)} reported keys lost (seed {seed}): {summary}"
    k = len(reported)
    assert held[: len(reported)] == reported and held[len(reported) :] in ([], [divmod(k, 25)]), summary
    assert_holds_exactly(learner, held)
    learner.close()
