"""`rlt robot cameras`: list the connected Intel RealSense cameras (serial numbers for launch/config/robot.yaml)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from rlt.robot.realsense import import_pyrealsense2

    rs = import_pyrealsense2()
    devices = list(rs.context().query_devices())
    if not devices:
        print("no RealSense camera found (USB3 cable? `lsusb`; in Docker: privileged with /dev mounted)")
        return 1
    info = rs.camera_info
    for device in devices:
        fields = [(k, getattr(info, k)) for k in ("serial_number", "name", "firmware_version", "usb_type_descriptor")]
        print("  ".join(f"{k}={device.get_info(v)}" for k, v in fields if device.supports(v)))
    return 0
