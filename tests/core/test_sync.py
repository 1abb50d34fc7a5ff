"""ObservationSync: exact stamps (sim) and nearest-within-tolerance (robot cameras on their own clocks)."""

import numpy as np

from rlt.sync import ObservationSync
from rlt.types import ChunkRequest

MS = 1_000_000


def request(stamp_ns: int) -> ChunkRequest:
    return ChunkRequest(0, 0, ("dx", "dy", "dz", "dyaw"), stamp_ns=stamp_ns)


def image(value: int) -> np.ndarray:
    return np.full((2, 2, 3), value, np.uint8)


def test_exact_stamps_only_without_tolerance():
    sync = ObservationSync(("front",))
    sync.add_request(request(100 * MS))
    sync.add_image("front", 99 * MS, image(1))
    sync.add_proprio(100 * MS, np.zeros(3))
    assert sync.pop_ready() == []
    sync.add_image("front", 100 * MS, image(2))
    (obs,) = sync.pop_ready()
    assert obs.images["front"][0, 0, 0] == 2


def test_tolerance_takes_the_nearest_item_per_stream():
    sync = ObservationSync(("front", "wrist"), tolerance_ns=40 * MS)
    for t, v in ((40, 1), (73, 2), (106, 3)):  # a 30 fps camera
        sync.add_image("front", t * MS, image(v))
    sync.add_image("wrist", 95 * MS, image(9))
    for t in range(60, 110, 10):  # 100 Hz joint states
        sync.add_proprio(t * MS, np.full(3, t, np.float32))
    sync.add_request(request(100 * MS))
    (obs,) = sync.pop_ready()
    assert obs.images["front"][0, 0, 0] == 3 and obs.images["wrist"][0, 0, 0] == 9 and obs.proprio[0] == 100


def test_an_unservable_request_is_superseded_by_a_newer_one():
    sync = ObservationSync(("front",), tolerance_ns=20 * MS)
    sync.add_request(request(100 * MS))  # the camera was silent around t = 100 ms
    sync.add_request(request(600 * MS))
    sync.add_image("front", 590 * MS, image(5))
    sync.add_proprio(600 * MS, np.zeros(3))
    (obs,) = sync.pop_ready()
    assert obs.request.stamp_ns == 600 * MS and sync.superseded == 1
