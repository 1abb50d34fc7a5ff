"""RealSense frame handling: synthetic frames through librealsense's software device, the VLA downscale, clocks."""

import time

import numpy as np
import pytest

from rlt.config import ConfigError
from rlt.robot.imaging import DeviceClock, Intrinsics, square_resize
from rlt.robot.realsense import RealSenseCamera, RealSenseConfig, find_device, import_pyrealsense2

try:
    import_pyrealsense2()
except ImportError as exc:  # only on platforms without a pyrealsense2 wheel
    pytest.skip(f"pyrealsense2 unavailable: {exc}", allow_module_level=True)

from rlt.robot.realsense import SoftwareCamera


def pattern(width: int, height: int, k: int) -> np.ndarray:
    """uint8[H, W, 3]: a distinct image per frame number k."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([(x + k) % 256, (y + 2 * k) % 256, (x + y + 3 * k) % 256], axis=-1).astype(np.uint8)


def read_until(camera: RealSenseCamera, topics: set[str], timeout_s: float = 5.0) -> dict[str, list]:
    got: dict[str, list] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not topics <= {t for t, v in got.items() if v}:
        for image in camera.read(0.1):
            got.setdefault(image.topic, []).append(image)
    return got


def test_software_device_frames_become_images():
    cam = SoftwareCamera(serial="111", size=(640, 480), fps=30)
    cfg = RealSenseConfig(name="front", serial="111", streams=("color", "depth"), vla_size=96)
    camera = RealSenseCamera(find_device("111", [cam.device]), cfg)
    try:
        color, depth = pattern(640, 480, 7), np.full((480, 640), 1234, np.uint16)
        cam.push("color", color, 5000.0, 7, "global_time")
        cam.push("depth", depth, 5000.0, 7, "global_time")
        got = read_until(camera, {"color/image_raw", "image_raw", "depth/image_raw"})
    finally:
        camera.close()
    full, small, dep = got["color/image_raw"][0], got["image_raw"][0], got["depth/image_raw"][0]
    assert full.encoding == "rgb8" and np.array_equal(full.image, color)
    assert small.image.shape == (96, 96, 3) and np.array_equal(small.image, square_resize(color, 96))
    assert dep.encoding == "16UC1" and np.array_equal(dep.image, depth)
    assert full.stamp_ns == small.stamp_ns == 5_000_000_000 and full.frame_number == 7  # global time: ms -> ns
    assert (full.intrinsics.width, full.intrinsics.fx, full.intrinsics.ppx) == (640, 600.0, 319.5)
    assert small.intrinsics == full.intrinsics.crop_resize(96)


def test_wrong_serial_missing_device_and_unsupported_profile_are_clear():
    a, b = SoftwareCamera(serial="111"), SoftwareCamera(serial="222")
    with pytest.raises(RuntimeError, match=r"no RealSense camera with serial '333'; connected: 111, 222"):
        find_device("333", [a.device, b.device])
    with pytest.raises(RuntimeError, match=r"2 RealSense cameras connected \(111, 222\): set the serial"):
        find_device("", [a.device, b.device])
    with pytest.raises(RuntimeError, match="no RealSense camera found"):
        find_device("111", [])
    assert find_device("", [b.device]) is b.device
    with pytest.raises(RuntimeError, match=r"no color stream 1280x720@30 .*offers 640x480@30"):
        RealSenseCamera(a.device, RealSenseConfig(width=1280, height=720))


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"RealSenseConfig.streams"):
        RealSenseConfig(streams=("ir",))
    with pytest.raises(ConfigError, match=r"RealSenseConfig.vla_size"):
        RealSenseConfig(streams=("depth",), vla_size=96)


def test_square_resize_is_an_exact_area_average():
    image = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    out = square_resize(image, 3)  # crop columns 1..6, then 2x2 block means
    expect = image[:, 1:7].reshape(3, 2, 3, 2, 3).mean(axis=(1, 3))
    assert np.array_equal(out, np.rint(expect).astype(np.uint8))
    odd = square_resize(np.full((7, 7), 200, np.uint8), 3)  # non-integer factor keeps a flat image flat
    assert odd.shape == (3, 3) and (odd == 200).all()
    depth = np.arange(16, dtype=np.uint16).reshape(4, 4)
    assert np.array_equal(square_resize(depth, 2, "nearest"), depth[[1, 3]][:, [1, 3]])


def test_intrinsics_follow_the_crop_and_scale():
    intr = Intrinsics(640, 480, 600.0, 600.0, 319.5, 239.5)
    small = intr.crop_resize(96)
    assert (small.width, small.height) == (96, 96)
    assert small.fx == pytest.approx(120.0) and small.ppx == pytest.approx(47.5) and small.ppy == pytest.approx(47.5)


def test_hardware_clock_maps_with_the_least_delayed_frame_and_reanchors():
    clock = DeviceClock(window=10)
    # device clock starts at 1 s; host = device + 100 s + latency (5 ms, one frame only 1 ms)
    latencies = [5, 5, 1, 5, 5]
    stamps = [
        clock.to_ros_ns(1000.0 + 33 * i, "hardware_clock", int((101.0 + 0.033 * i) * 1e9) + lat * 1_000_000)
        for i, lat in enumerate(latencies)
    ]
    assert stamps[-1] == int((101.0 + 0.033 * 4) * 1e9) + 1_000_000  # offset of the 1 ms frame
    assert clock.to_ros_ns(5.0, "hardware_clock", 500 * 10**9) == 500 * 10**9  # device clock went back: re-anchor
    assert clock.resets == 1
    assert clock.to_ros_ns(1.5, "system_time", 0, ros_minus_host_ns=7) == 1_500_007
