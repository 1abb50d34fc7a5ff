"""Intel RealSense cameras through `pyrealsense2`, free of ROS: find a device, stream it, turn frames into images.

One code path serves real cameras and tests: `RealSenseCamera` takes any `rs.device` — one found by serial number
in an `rs.context` (`find_device`), or an `rs.software_device` a test feeds synthetic frames into — opens the sensors
that carry the configured streams at the configured resolution and rate, and starts them into an `rs.syncer`
(what `rs.pipeline` does inside; the pipeline itself cannot be pointed at a software device in librealsense 2.59).
`RealSenseCamera.read()` returns `CameraImage`s: the full-resolution color (rgb8) and depth (16UC1, mm scale as the
device reports) images and the square `vla_size` copy of color the VLA expects, each stamped in ROS time
(`rlt.robot.imaging.DeviceClock`) with its intrinsics.

pyrealsense2 is imported on first use (`import_pyrealsense2`), never at module import: the wheel links libusb-1.0,
which the `libusb-package` wheel provides when the system has none; failures say what to install.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from rlt.config import Config
from rlt.robot.imaging import DeviceClock, Intrinsics, square_resize

STREAMS = ("color", "depth")
_DISTORTION = {"brown_conrady": "plumb_bob", "inverse_brown_conrady": "plumb_bob", "none": "plumb_bob"}


def import_pyrealsense2() -> ModuleType:
    """`pyrealsense2`, with libusb-1.0 preloaded from the libusb-package wheel if the system lacks it."""
    try:
        import pyrealsense2 as rs

        return rs
    except ImportError as first:
        if "libusb" not in str(first):
            raise ImportError(
                f"pyrealsense2 is not importable ({first}); install the pinned wheel from ros_ws/requirements.lock "
                "(PyPI has cp311 wheels for Linux x86_64 and aarch64)"
            ) from first
    try:
        import ctypes

        import libusb_package

        ctypes.CDLL(str(libusb_package.get_library_path()), mode=ctypes.RTLD_GLOBAL)
        import pyrealsense2 as rs

        return rs
    except (ImportError, OSError, TypeError) as exc:
        raise ImportError(
            f"pyrealsense2 needs libusb-1.0 ({exc}): install the libusb-package wheel (ros_ws/requirements.lock) "
            "or the system library (apt-get install libusb-1.0-0)"
        ) from exc


@dataclasses.dataclass(frozen=True)
class RealSenseConfig(Config):
    """One RealSense camera: which device, which streams, what size and rate."""

    name: str = "front"  # topics camera/<name>/...; must match a name in the VLA's `cameras`
    serial: str = ""  # device serial number (rs-enumerate-devices, or the sticker); "" = the only connected camera
    width: int = 640  # px, color (and depth unless depth_width is set)
    height: int = 480  # px
    fps: int = 30  # frames per second, every stream
    streams: tuple[str, ...] = ("color",)  # "color" and/or "depth"
    depth_width: int = 0  # px, depth stream; 0 = width
    depth_height: int = 0  # px; 0 = height
    vla_size: int = 96  # px, square color copy for the VLA on camera/<name>/image_raw; 0 = none
    full_resolution: bool = True  # also publish the full-size streams (camera/<name>/color|depth/image_raw)
    frame_timeout_s: float = 2.0  # no frame for this long is an error (unplugged, USB bandwidth)

    def validate(self) -> None:
        if not self.name or "/" in self.name:
            self.fail("name", "must be a non-empty topic name segment (no '/')")
        if not self.streams or any(s not in STREAMS for s in self.streams):
            self.fail("streams", f"must list some of {STREAMS}")
        self.require_positive("width", "height", "fps", "frame_timeout_s")
        if self.depth_width < 0 or self.depth_height < 0 or self.vla_size < 0:
            self.fail("vla_size" if self.vla_size < 0 else "depth_width", "must be >= 0")
        if self.vla_size and "color" not in self.streams:
            self.fail("vla_size", "needs the color stream (set streams to include color, or vla_size 0)")
        if not self.vla_size and not self.full_resolution:
            self.fail("full_resolution", "with vla_size 0 nothing would be published")

    def stream_size(self, stream: str) -> tuple[int, int]:
        """(width, height) of `stream`."""
        if stream == "depth":
            return self.depth_width or self.width, self.depth_height or self.height
        return self.width, self.height


@dataclasses.dataclass
class CameraImage:
    """One image to publish on camera/<name>/<topic> with its CameraInfo on camera/<name>/<info_topic>."""

    topic: str  # "color/image_raw", "depth/image_raw" or "image_raw" (the VLA copy)
    info_topic: str
    image: np.ndarray  # uint8[H, W, 3] (rgb8) or uint16[H, W] (16UC1)
    encoding: str
    stamp_ns: int  # ROS time
    intrinsics: Intrinsics
    frame_number: int


def device_serial(device: Any) -> str:
    rs = import_pyrealsense2()
    return device.get_info(rs.camera_info.serial_number) if device.supports(rs.camera_info.serial_number) else ""


def find_device(serial: str, devices: Sequence[Any] | None = None) -> Any:
    """The connected device with `serial` ("" = the only one); `devices` defaults to an rs.context's list."""
    rs = import_pyrealsense2()
    if devices is None:
        devices = list(rs.context().query_devices())
    serials = [device_serial(d) for d in devices]
    if not devices:
        raise RuntimeError(
            "no RealSense camera found: check the USB3 cable and `lsusb` (Intel 8086:0b07 etc.); in Docker pass the "
            "USB bus (devices: /dev/bus/usb) and run privileged or with the udev rules of librealsense"
        )
    if not serial:
        if len(devices) > 1:
            raise RuntimeError(f"{len(devices)} RealSense cameras connected ({', '.join(serials)}): set the serial")
        return devices[0]
    if serial not in serials:
        raise RuntimeError(f"no RealSense camera with serial {serial!r}; connected: {', '.join(serials)}")
    return devices[serials.index(serial)]


class RealSenseCamera:
    """Stream one device (real or software) into images; see the module docstring."""

    def __init__(self, device: Any, cfg: RealSenseConfig, clock: DeviceClock | None = None) -> None:
        self.rs = rs = import_pyrealsense2()
        self.device, self.cfg = device, cfg
        self.clock = clock or DeviceClock()
        self.serial = device_serial(device)
        self.syncer = rs.syncer(4)
        self.sensors: list[Any] = []
        wanted = {
            "color": (rs.stream.color, rs.format.rgb8),
            "depth": (rs.stream.depth, rs.format.z16),
        }
        by_sensor: dict[int, tuple[Any, list[Any]]] = {}
        sensors = list(device.query_sensors())
        for stream in cfg.streams:
            kind, fmt = wanted[stream]
            width, height = cfg.stream_size(stream)
            match = None
            offered = []
            for i, sensor in enumerate(sensors):
                for profile in sensor.get_stream_profiles():
                    if profile.stream_type() != kind or not profile.is_video_stream_profile():
                        continue
                    video = profile.as_video_stream_profile()
                    offered.append(f"{video.width()}x{video.height()}@{video.fps()} {profile.format()}")
                    if (video.width(), video.height(), video.fps(), profile.format()) == (width, height, cfg.fps, fmt):
                        match = (i, profile)
            if match is None:
                raise RuntimeError(
                    f"RealSense {self.serial or '?'}: no {stream} stream {width}x{height}@{cfg.fps} {fmt}; "
                    f"the device offers {', '.join(sorted(set(offered))) or 'none'}"
                )
            by_sensor.setdefault(match[0], (sensors[match[0]], []))[1].append(match[1])
        self.depth_scale = 0.001  # m per depth unit, replaced by the device's value below
        for sensor, profiles in by_sensor.values():
            if sensor.supports(rs.option.depth_units):
                self.depth_scale = float(sensor.get_option(rs.option.depth_units))
            sensor.open(profiles if len(profiles) > 1 else profiles[0])
            sensor.start(self.syncer)
            self.sensors.append(sensor)
        self._last_frame_s = time.monotonic()
        self._domains = {
            rs.timestamp_domain.hardware_clock: "hardware_clock",
            rs.timestamp_domain.system_time: "system_time",
            rs.timestamp_domain.global_time: "global_time",
        }

    def read(self, timeout_s: float, host_ns: int | None = None, ros_minus_host_ns: int = 0) -> list[CameraImage]:
        """Images of the next frameset (empty if none came within `timeout_s`; an error past frame_timeout_s)."""
        ok, frames = self.syncer.try_wait_for_frames(int(timeout_s * 1000))
        now_s = time.monotonic()
        if not ok:
            if now_s - self._last_frame_s > self.cfg.frame_timeout_s:
                raise RuntimeError(
                    f"RealSense {self.cfg.name} ({self.serial}): no frame for {now_s - self._last_frame_s:.1f} s "
                    "(unplugged? USB2 port or hub without the bandwidth for these streams?)"
                )
            return []
        self._last_frame_s = now_s
        host_ns = time.time_ns() if host_ns is None else host_ns
        images = []
        for frame in frames:
            images += self._convert(frame, host_ns, ros_minus_host_ns)
        return images

    def _convert(self, frame: Any, host_ns: int, ros_minus_host_ns: int) -> list[CameraImage]:
        rs = self.rs
        profile = frame.get_profile()
        video = profile.as_video_stream_profile()
        domain = self._domains.get(frame.get_frame_timestamp_domain(), "system_time")
        stamp_ns = self.clock.to_ros_ns(frame.get_timestamp(), domain, host_ns, ros_minus_host_ns)
        intr = video.get_intrinsics()
        intrinsics = Intrinsics(
            intr.width,
            intr.height,
            intr.fx,
            intr.fy,
            intr.ppx,
            intr.ppy,
            _DISTORTION.get(str(intr.model).rsplit(".", 1)[-1], "plumb_bob"),
            tuple(float(c) for c in intr.coeffs),
        )
        number = int(frame.get_frame_number())
        data = np.asanyarray(frame.get_data()).copy()  # the frame's memory goes back to librealsense
        out = []
        if profile.stream_type() == rs.stream.color:
            image = data.reshape(video.height(), video.width(), 3)  # uint8[H, W, 3]
            if self.cfg.full_resolution:
                out.append(
                    CameraImage("color/image_raw", "color/camera_info", image, "rgb8", stamp_ns, intrinsics, number)
                )
            if self.cfg.vla_size:
                small = square_resize(image, self.cfg.vla_size)  # uint8[S, S, 3]
                out.append(
                    CameraImage(
                        "image_raw",
                        "camera_info",
                        small,
                        "rgb8",
                        stamp_ns,
                        intrinsics.crop_resize(self.cfg.vla_size),
                        number,
                    )
                )
        elif profile.stream_type() == rs.stream.depth and self.cfg.full_resolution:
            image = data.reshape(video.height(), video.width())  # uint16[H, W], depth units (depth_scale m each)
            out.append(
                CameraImage("depth/image_raw", "depth/camera_info", image, "16UC1", stamp_ns, intrinsics, number)
            )
        return out

    def close(self) -> None:
        for sensor in self.sensors:
            for call in (sensor.stop, sensor.close):
                with contextlib.suppress(RuntimeError):  # already stopped (a device that went away)
                    call()
        self.sensors = []


class SoftwareCamera:
    """An `rs.software_device` that looks like a D400 (color + depth sensors) and takes synthetic frames.

    It goes through the same librealsense frame path as a real camera (sensor -> syncer -> frame objects), so
    tests and smoke runs exercise `RealSenseCamera` without hardware. `push` hands one frame per stream to the
    device; `device` is what `RealSenseCamera` (or `find_device(serial, [camera.device])`) takes.
    """

    def __init__(
        self,
        serial: str = "000000000001",
        size: tuple[int, int] = (640, 480),
        fps: int = 30,
        depth_size: tuple[int, int] | None = None,
        focal_px: float = 600.0,
    ) -> None:
        self.rs = rs = import_pyrealsense2()
        self.device = rs.software_device()
        self.device.register_info(rs.camera_info.name, "Synthetic RealSense (software device)")
        self.device.register_info(rs.camera_info.serial_number, serial)
        self.color_sensor = self.device.add_sensor("RGB Camera")
        self.depth_sensor = self.device.add_sensor("Stereo Module")
        self.depth_sensor.add_read_only_option(rs.option.depth_units, 0.001)
        self.profiles = {}
        for uid, (name, sensor, kind, fmt, bpp, (w, h)) in enumerate(
            [
                ("color", self.color_sensor, rs.stream.color, rs.format.rgb8, 3, size),
                ("depth", self.depth_sensor, rs.stream.depth, rs.format.z16, 2, depth_size or size),
            ]
        ):
            intr = rs.intrinsics()
            intr.width, intr.height, intr.fx, intr.fy = w, h, focal_px, focal_px
            intr.ppx, intr.ppy = (w - 1) / 2, (h - 1) / 2
            intr.model, intr.coeffs = rs.distortion.brown_conrady, [0.0] * 5
            stream = rs.video_stream()
            stream.type, stream.index, stream.uid, stream.width, stream.height = kind, 0, uid, w, h
            stream.fps, stream.bpp, stream.fmt, stream.intrinsics = fps, bpp, fmt, intr
            self.profiles[name] = (sensor, sensor.add_video_stream(stream).as_video_stream_profile(), bpp, (w, h))
        self.device.create_matcher(rs.matchers.dlr_c)

    def push(self, stream: str, image: np.ndarray, timestamp_ms: float, frame_number: int, domain: str) -> None:
        """Hand one frame (uint8[H, W, 3] color or uint16[H, W] depth) to the device, stamped in `domain`."""
        rs = self.rs
        sensor, profile, bpp, (w, h) = self.profiles[stream]
        pixels = np.ascontiguousarray(image)
        if pixels.shape[:2] != (h, w) or pixels.itemsize * (pixels.size // (h * w)) != bpp:
            raise ValueError(f"SoftwareCamera.push({stream}): expected {w}x{h} with {bpp} bytes/px, got {pixels.shape}")
        frame = rs.software_video_frame()
        frame.pixels, frame.bpp, frame.stride = pixels, bpp, w * bpp
        frame.timestamp, frame.frame_number, frame.profile = timestamp_ms, frame_number, profile
        frame.domain = getattr(rs.timestamp_domain, domain)
        if stream == "depth":
            frame.depth_units = 0.001
        sensor.on_video_frame(frame)
