"""Synchronization of camera images and proprio with the driver's chunk requests, by stamp.

The VLA answers a `ChunkRequest` with the images and joint state that carry the request's stamp. They arrive on
separate topics, in any order; `ObservationSync` holds them (bounded) and hands out complete observations in
request order. Data older than the oldest open request is dropped, so memory stays bounded however long a
session runs.
In the sim every stamp matches exactly (tolerance 0). On a robot cameras and joint states run on their own clocks
and rates: with `tolerance_ns` > 0 each request takes, per camera and for proprio, the item nearest its stamp
within the tolerance, and a request that cannot be served while a newer one waits is dropped (superseded).
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np

from rlt.types import ChunkRequest


@dataclasses.dataclass
class SyncedObservation:
    """Everything one VLA pass needs."""

    request: ChunkRequest
    images: dict[str, np.ndarray]  # camera -> uint8[H, W, 3]
    proprio: np.ndarray  # float32[P]


class ObservationSync:
    """Match requests with same-stamp images (one per camera) and proprio."""

    def __init__(self, cameras: tuple[str, ...], max_items: int = 200, tolerance_ns: int = 0) -> None:
        if not cameras:
            raise ValueError("ObservationSync.cameras: need at least one camera name")
        if tolerance_ns < 0:
            raise ValueError(f"ObservationSync.tolerance_ns: must be >= 0, got {tolerance_ns}")
        self.cameras = tuple(cameras)
        self.max_items = max_items
        self.tolerance_ns = tolerance_ns
        self._images: dict[str, dict[int, np.ndarray]] = {c: {} for c in self.cameras}
        self._proprio: dict[int, np.ndarray] = {}
        self._requests: collections.deque[ChunkRequest] = collections.deque()
        self.dropped = 0  # items evicted because the buffer was full
        self.superseded = 0  # requests dropped unserved because a newer one was waiting (tolerance mode)

    def add_image(self, camera: str, stamp_ns: int, image: np.ndarray) -> None:
        if camera not in self._images:
            raise ValueError(f"image from unknown camera {camera!r}; expected one of {self.cameras}")
        self._put(self._images[camera], stamp_ns, image)

    def add_proprio(self, stamp_ns: int, proprio: np.ndarray) -> None:
        self._put(self._proprio, stamp_ns, proprio)

    def add_request(self, request: ChunkRequest) -> None:
        self._requests.append(request)

    @property
    def pending(self) -> int:
        return len(self._requests)

    def pop_ready(self) -> list[SyncedObservation]:
        """Complete observations for the oldest requests, in request order (stops at the first incomplete one)."""
        ready = []
        while self._requests:
            stamp = self._requests[0].stamp_ns
            proprio_key = self._match(self._proprio, stamp)
            image_keys = {c: self._match(self._images[c], stamp) for c in self.cameras}
            if proprio_key is None or None in image_keys.values():
                if self.tolerance_ns and len(self._requests) > 1:
                    self._requests.popleft()
                    self.superseded += 1
                    continue
                break
            request = self._requests.popleft()
            images = {c: self._images[c][k] for c, k in image_keys.items()}
            ready.append(SyncedObservation(request, images, self._proprio[proprio_key]))
            self._forget_before(stamp + 1 if not self._requests else self._requests[0].stamp_ns)
        return ready

    def _match(self, store: dict[int, np.ndarray], stamp_ns: int) -> int | None:
        """Key of the item for a request at `stamp_ns`: the same stamp, or the nearest within the tolerance."""
        if stamp_ns in store or not self.tolerance_ns:
            return stamp_ns if stamp_ns in store else None
        near = [k for k in store if abs(k - stamp_ns) <= self.tolerance_ns]
        return min(near, key=lambda k: abs(k - stamp_ns)) if near else None

    def _put(self, store: dict[int, np.ndarray], stamp_ns: int, value: np.ndarray) -> None:
        if self._requests and stamp_ns < self._requests[0].stamp_ns - self.tolerance_ns:
            return  # older than anything still awaited
        store[stamp_ns] = value
        while len(store) > self.max_items:
            del store[min(store)]
            self.dropped += 1

    def _forget_before(self, stamp_ns: int) -> None:
        for store in (*self._images.values(), self._proprio):
            for key in [k for k in store if k < stamp_ns - self.tolerance_ns]:
                del store[key]
