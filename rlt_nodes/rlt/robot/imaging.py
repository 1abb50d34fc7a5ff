"""Camera-side numerics, free of devices and ROS: the VLA's square downscale, intrinsics, device-clock mapping.

- `square_resize` center-crops an image to a square and resamples it to `size` px: area averaging for color (exact
  box filter, numpy only) and nearest sampling for depth (averaging depth across edges and holes invents values);
- `Intrinsics.crop_resize` gives the pinhole intrinsics of that copy, so its CameraInfo stays true;
- `DeviceClock` maps a camera's frame timestamps to ROS time (ns). RealSense frames come in three domains:
  `global_time` (device clock already translated to host time by librealsense: used as is), `system_time` (host
  time at arrival: used as is) and `hardware_clock` (the device's own counter: mapped with the smallest observed
  host-minus-device offset over a sliding window, i.e. the least-delayed frame, and re-anchored if the device
  clock jumps). Host time here is the realtime clock, which is ROS time unless a node uses sim time.
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """float64[n_out, n_in]: row o averages the input pixels that output pixel o covers (overlap fractions)."""
    edges = np.linspace(0.0, n_in, n_out + 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    pix = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, pix + 1) - np.maximum(lo, pix), 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def square_crop(height: int, width: int) -> tuple[int, int, int]:
    """(top, left, side) of the centered square crop of a height x width image."""
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side


def square_resize(image: np.ndarray, size: int, method: str = "area") -> np.ndarray:
    """[H, W, C] or [H, W] -> centered square crop resampled to [size, size, C] / [size, size], same dtype.

    method "area" (color: box filter, rounded for integer images) or "nearest" (depth).
    """
    if size <= 0:
        raise ValueError(f"square_resize: size must be > 0, got {size}")
    arr = np.asarray(image)
    if arr.ndim not in (2, 3):
        raise ValueError(f"square_resize: expected [H, W] or [H, W, C], got shape {arr.shape}")
    top, left, side = square_crop(arr.shape[0], arr.shape[1])
    square = arr[top : top + side, left : left + side]
    if method == "nearest":
        index = ((np.arange(size) + 0.5) * side / size).astype(np.int64)
        return np.ascontiguousarray(square[index][:, index])
    if method != "area":
        raise ValueError(f"square_resize: method must be 'area' or 'nearest', got {method!r}")
    flat = square.reshape(side, side, -1)
    if side % size == 0:  # integer factor: the box filter is a block mean
        k, c = side // size, flat.shape[2]
        acc = np.uint32 if np.issubdtype(arr.dtype, np.integer) and arr.dtype.itemsize <= 2 else np.float64
        rows = flat.reshape(size, k, side, c).sum(axis=1, dtype=acc)  # [size, side, C]; one axis at a time is fast
        out = rows.reshape(size, size, k, c).sum(axis=2, dtype=acc) / (k * k)  # float64[size, size, C]
    else:
        weights = _area_weights(side, size)  # float64[size, side]
        rows = np.tensordot(weights, flat.astype(np.float64), axes=(1, 0))  # float64[size, side, C]
        out = np.tensordot(rows, weights, axes=(1, 1)).transpose(0, 2, 1)  # float64[size, size, C]
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(arr.dtype).reshape((size, size, *arr.shape[2:]))


@dataclasses.dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of an image (px) plus its distortion model and coefficients (as the camera reports)."""

    width: int
    height: int
    fx: float
    fy: float
    ppx: float
    ppy: float
    model: str = "plumb_bob"  # ROS distortion model name
    coeffs: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)

    def crop_resize(self, size: int) -> Intrinsics:
        """Intrinsics of `square_resize(image, size)` (pixel centers map exactly; distortion kept, approximate)."""
        top, left, side = square_crop(self.height, self.width)
        scale = size / side
        return Intrinsics(
            size,
            size,
            self.fx * scale,
            self.fy * scale,
            (self.ppx - left + 0.5) * scale - 0.5,
            (self.ppy - top + 0.5) * scale - 0.5,
            self.model,
            self.coeffs,
        )

    def matrix(self) -> np.ndarray:
        """K float64[3, 3]."""
        return np.array([[self.fx, 0.0, self.ppx], [0.0, self.fy, self.ppy], [0.0, 0.0, 1.0]])


TIMESTAMP_DOMAINS = ("hardware_clock", "system_time", "global_time")


class DeviceClock:
    """Frame timestamps (ms, in one of TIMESTAMP_DOMAINS) -> ROS time ns (see the module docstring)."""

    def __init__(self, window: int = 100, jump_s: float = 1.0) -> None:
        self.window = window
        self.jump_ns = int(jump_s * 1e9)
        self._offsets: collections.deque[int] = collections.deque(maxlen=window)  # host - device, ns
        self._last_device_ns: int | None = None
        self.resets = 0  # times the hardware-clock anchor was dropped (device clock jumped)

    def to_ros_ns(self, timestamp_ms: float, domain: str, host_ns: int, ros_minus_host_ns: int = 0) -> int:
        """Map one frame timestamp; `host_ns` is the realtime clock when the frame was read (for hardware_clock)."""
        if domain not in TIMESTAMP_DOMAINS:
            raise ValueError(f"timestamp domain {domain!r}: expected one of {TIMESTAMP_DOMAINS}")
        device_ns = round(timestamp_ms * 1e6)
        if domain != "hardware_clock":
            return device_ns + ros_minus_host_ns
        last = self._last_device_ns
        if last is not None and not 0 <= device_ns - last <= self.jump_ns:
            self._offsets.clear()  # the device clock wrapped, reset or skipped: re-anchor
            self.resets += 1
        self._last_device_ns = device_ns
        self._offsets.append(host_ns - device_ns)
        return device_ns + min(self._offsets) + ros_minus_host_ns
