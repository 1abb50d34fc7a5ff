"""Append-only journal of the learner's received data, so that a crash between checkpoints loses nothing.

This module owns the on-disk record format, the append side (`Journal`: one open segment, fsync timing,
rotation) and the read side (`JournalReader`: every record of the segments from a number on, torn tails
dropped and reported). It knows nothing about the learner's checkpoints; `rlt.rl.learner` decides which
segments a checkpoint covers and prunes them.

Layout: segments `journal_<NNNNNN>.bin` in one directory, numbered from 0, each a sequence of records

    header: magic b"RLTJ" | kind u8 | payload length u32 | crc32(payload) u32      (little-endian, 13 bytes)
    payload:
      TRANSITION  stream_id i64 | episode_id i64 | step i64 | stamp_ns i64 | done u8 | intervened u8
                  | Z u32 | P u32 | C u32 | D u32
                  | float32 rl_token[Z] proprio[P] action[C·D] reference[C·D] rewards[C] next_rl_token[Z]
                  next_proprio[P] next_reference[C·D]
      VERSION     u64: a weights version the learner handed out

`append` writes a whole record with one `os.write` on an unbuffered descriptor: once it returns, the record is in
the OS page cache and survives a SIGKILL of the process. A SIGKILL during the write leaves a torn last record;
reading stops a segment at the first short, mis-tagged or crc-failing record and counts the bytes it dropped.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import re
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rlt.types import Transition

MAGIC = b"RLTJ"
HEADER = struct.Struct("<4sBII")  # magic, kind, payload length, crc32 of the payload
TRANSITION_HEAD = struct.Struct("<qqqqBBIIII")  # stream_id, episode_id, step, stamp_ns, done, intervened, Z, P, C, D
VERSION_PAYLOAD = struct.Struct("<Q")
SEGMENT_RE = re.compile(r"journal_(\d+)\.bin")


class Kind(enum.IntEnum):
    """Record kinds."""

    TRANSITION = 1
    VERSION = 2


def segment_path(directory: str | os.PathLike[str], number: int) -> Path:
    """The file of segment `number` in `directory`."""
    return Path(directory) / f"journal_{number:06d}.bin"


def segments(directory: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """(number, path) of the journal segments in `directory`, ascending; [] when there is none (or no directory)."""
    root = Path(directory)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := SEGMENT_RE.fullmatch(p.name))]
    return sorted(found)


def prune(directory: str | os.PathLike[str], before: int) -> list[Path]:
    """Delete the segments numbered < `before`; returns the deleted files."""
    gone = [path for number, path in segments(directory) if number < before]
    for path in gone:
        path.unlink(missing_ok=True)
    if gone:
        fsync_path(Path(directory))
    return gone


# ---------------------------------------------------------------------- record encoding
def encode_transition(t: Transition) -> bytes:
    """The TRANSITION payload of `t` (arrays as float32, exactly as held)."""
    z, p = t.rl_token.shape[0], t.proprio.shape[0]
    c, d = t.action.shape
    head = TRANSITION_HEAD.pack(int(t.stream_id), int(t.episode_id), int(t.step), int(t.stamp_ns), int(bool(t.done)),
                                int(bool(t.intervened)), z, p, c, d)
    arrays = (t.rl_token, t.proprio, t.action, t.reference, t.rewards, t.next_rl_token, t.next_proprio,
              t.next_reference)
    return head + b"".join(np.ascontiguousarray(a, np.float32).tobytes() for a in arrays)


def decode_transition(payload: bytes) -> Transition:
    """Inverse of `encode_transition`; ValueError if the payload's length does not match its sizes."""
    if len(payload) < TRANSITION_HEAD.size:
        raise ValueError(f"journal: TRANSITION payload of {len(payload)} bytes, shorter than its header")
    stream_id, episode_id, step, stamp_ns, done, intervened, z, p, c, d = TRANSITION_HEAD.unpack_from(payload)
    sizes = (z, p, c * d, c * d, c, z, p, c * d)
    if len(payload) != TRANSITION_HEAD.size + 4 * sum(sizes):
        raise ValueError(f"journal: TRANSITION payload of {len(payload)} bytes does not match Z={z} P={p} C={c} D={d}")
    flat = np.frombuffer(payload, np.float32, offset=TRANSITION_HEAD.size).copy()  # float32[2Z + 2P + 3C·D + C]
    parts, at = [], 0
    for n in sizes:
        parts.append(flat[at : at + n])
        at += n
    rl_token, proprio, action, reference, rewards, next_rl_token, next_proprio, next_reference = parts
    return Transition(
        rl_token=rl_token, proprio=proprio, action=action.reshape(c, d), reference=reference.reshape(c, d),
        rewards=rewards, done=bool(done), intervened=bool(intervened), next_rl_token=next_rl_token,
        next_proprio=next_proprio, next_reference=next_reference.reshape(c, d), episode_id=episode_id, step=step,
        stamp_ns=stamp_ns, stream_id=stream_id,
    )


def encode_record(kind: Kind, payload: bytes) -> bytes:
    """Header + payload of one record."""
    return HEADER.pack(MAGIC, int(kind), len(payload), zlib.crc32(payload)) + payload


# ---------------------------------------------------------------------- appending
class Journal:
    """The append side: owns the one open segment's descriptor, its fsync timing, rotation and closing.

    Not thread-safe by itself: the learner serializes `append*`, `rotate` and `close` under its data lock.
    """

    def __init__(self, directory: str | os.PathLike[str], segment: int, *, fsync_every_s: float = 1.0) -> None:
        """Create segment `segment` (it must not exist yet: a segment is never appended to after a restart)."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        # a SIGKILL needs only the write (the page cache survives the process); the fsync is for power loss
        self.fsync_every_s = fsync_every_s
        self._segment = segment
        self._fd: int | None = self._create(segment)
        self._synced_at = time.monotonic()
        self._failed = False  # an append raised mid-record

    def _create(self, number: int) -> int:
        fd = os.open(segment_path(self.directory, number), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        fsync_path(self.directory)
        return fd

    @property
    def segment(self) -> int:
        """Number of the segment being appended to."""
        return self._segment

    def append(self, kind: Kind, payload: bytes) -> None:
        """Write one record with a single os.write (in the page cache on return); fsync if `fsync_every_s` passed."""
        if self._fd is None:
            raise RuntimeError(f"Journal: {segment_path(self.directory, self._segment)} is closed")
        if self._failed:  # the last write may have left a partial record: later ones must not follow it
            self.rotate()
            self._failed = False
        record = encode_record(kind, payload)
        view = memoryview(record)
        try:
            written = os.write(self._fd, view)
            while written < len(record):  # a regular file takes it whole unless the disk is full
                written += os.write(self._fd, view[written:])
        except BaseException:
            self._failed = True
            raise
        now = time.monotonic()
        if now - self._synced_at >= self.fsync_every_s:
            os.fsync(self._fd)
            self._synced_at = now

    def append_transition(self, t: Transition) -> None:
        self.append(Kind.TRANSITION, encode_transition(t))

    def append_version(self, version: int) -> None:
        self.append(Kind.VERSION, VERSION_PAYLOAD.pack(version))

    def rotate(self) -> int:
        """Start segment number + 1 and fsync and close the old one; returns the new number."""
        if self._fd is None:
            raise RuntimeError(f"Journal: {segment_path(self.directory, self._segment)} is closed")
        old = self._fd
        self._fd = self._create(self._segment + 1)
        self._segment += 1
        _fsync_close(old)
        self._synced_at = time.monotonic()
        return self._segment

    def close(self) -> None:
        """fsync and close the open segment (idempotent)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            _fsync_close(fd)


# ---------------------------------------------------------------------- reading
@dataclasses.dataclass(frozen=True)
class Record:
    """One record read back: a transition or a weights version, and where it was."""

    kind: Kind
    segment: int
    offset: int  # byte offset of the record's header in its segment
    transition: Transition | None = None
    version: int | None = None


@dataclasses.dataclass(frozen=True)
class TornTail:
    """The dropped rest of a segment: from `offset` (the first bad record) to the end of `path`."""

    path: Path
    offset: int
    dropped_bytes: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path.name} at byte {self.offset}: {self.reason}, {self.dropped_bytes} bytes dropped"


class JournalReader:
    """Iterates the records of every segment numbered >= `first_segment`, oldest first; never raises on bad data.

    A short header, short payload, wrong magic, unknown kind, crc mismatch or undecodable payload ends that segment's
    reading: the rest is dropped and described in `torn` (filled while iterating). Iterate once.
    """

    def __init__(self, directory: str | os.PathLike[str], first_segment: int = 0) -> None:
        self.directory = Path(directory)
        self.first_segment = first_segment
        self.torn: list[TornTail] = []
        self.records = 0  # good records read

    def __iter__(self) -> Iterator[Record]:
        for number, path in segments(self.directory):
            if number >= self.first_segment:
                yield from self._read_segment(number, path)

    def _read_segment(self, number: int, path: Path) -> Iterator[Record]:
        data = path.read_bytes()  # segments span one checkpoint interval: small enough to read whole
        at = 0
        while at < len(data):
            record, reason = self._parse(number, data, at)
            if record is None:
                self.torn.append(TornTail(path, at, len(data) - at, reason))
                return
            self.records += 1
            yield record
            at += HEADER.size + _payload_length(data, at)

    @staticmethod
    def _parse(number: int, data: bytes, at: int) -> tuple[Record | None, str]:
        if len(data) - at < HEADER.size:
            return None, f"short header ({len(data) - at} of {HEADER.size} bytes)"
        magic, kind, length, crc = HEADER.unpack_from(data, at)
        if magic != MAGIC:
            return None, f"bad magic {magic!r}"
        start = at + HEADER.size
        if len(data) - start < length:
            return None, f"short payload ({len(data) - start} of {length} bytes)"
        payload = data[start : start + length]
        if zlib.crc32(payload) != crc:
            return None, "crc mismatch"
        try:
            if kind == Kind.TRANSITION:
                return Record(Kind.TRANSITION, number, at, transition=decode_transition(payload)), ""
            if kind == Kind.VERSION and length == VERSION_PAYLOAD.size:
                return Record(Kind.VERSION, number, at, version=VERSION_PAYLOAD.unpack(payload)[0]), ""
        except ValueError as exc:  # a crc-valid payload that does not decode: written by another format
            return None, f"undecodable payload ({exc})"
        return None, f"unknown record kind {kind} ({length} bytes)"


def _payload_length(data: bytes, at: int) -> int:
    return HEADER.unpack_from(data, at)[2]


def fsync_path(path: Path) -> None:
    """fsync a file or a folder (a folder: so a rename or a new entry in it survives a power loss)."""
    _fsync_close(os.open(path, os.O_RDONLY))


def _fsync_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
