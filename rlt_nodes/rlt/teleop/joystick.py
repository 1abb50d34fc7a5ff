"""Gamepads on Linux through the kernel evdev interface (python-evdev), turned into `sensor_msgs/Joy` axes/buttons.

This module owns reading a real gamepad: finding it under /dev/input, the Joy layout of its axes and buttons, the
conversion of evdev events into Joy values, and resynchronizing after the kernel dropped events (SYN_DROPPED).
The layout and values follow the ROS `joy_linux` node (which reads the same device through the kernel's joydev
interface), so one mapping file (`rlt.teleop.teleop.JoyMapping`) fits both:
- axes: every absolute axis the device has, in ascending ABS_* code order; value = -(normalized deflection) in
  [-1, 1] (joy_linux's sign: stick up and stick left are +1; a released trigger reads +1), the kernel's `flat`
  zone and then `deadzone` removed around the centre;
- buttons: key codes >= BTN_JOYSTICK in ascending order, then BTN_MISC..BTN_JOYSTICK-1 (the joydev order).
python-evdev is imported lazily, so `import rlt.teleop.joystick` works on machines without it; no ROS here.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rlt.config import Config

# linux/input-event-codes.h (stable kernel ABI), so the layout logic needs no evdev import
EV_SYN, EV_KEY, EV_ABS = 0x00, 0x01, 0x03
SYN_DROPPED = 3
BTN_MISC, BTN_JOYSTICK, BTN_GAMEPAD, KEY_MAX = 0x100, 0x120, 0x130, 0x2FF
ABS_X = 0x00


@dataclasses.dataclass(frozen=True)
class JoystickConfig(Config):
    """Which gamepad the joystick node reads and how it publishes it."""

    device: str = ""  # /dev/input/eventN; "" = the first gamepad found whose name contains `name`
    name: str = ""  # substring of the device name to pick (case-insensitive); "" = any gamepad
    deadzone: float = 0.05  # |axis| below this reads 0 (joy_linux's default), the rest rescaled to [-1, 1]
    autorepeat_hz: float = 20.0  # re-publish the unchanged state at this rate (joy_linux autorepeat_rate); 0 = off
    poll_hz: float = 200.0  # how often the device is read
    reconnect_s: float = 1.0  # after the device was lost, try to open it again this often

    def validate(self) -> None:
        self.require_range("deadzone", 0.0, 0.99)
        self.require_range("autorepeat_hz", 0.0, 1000.0)
        self.require_range("poll_hz", 1.0, 10000.0)
        self.require_positive("reconnect_s")


@dataclasses.dataclass(frozen=True)
class AxisSpec:
    """One absolute axis: its ABS_* code and the range the kernel reports (`evdev.AbsInfo` fields)."""

    code: int
    minimum: int
    maximum: int
    flat: int = 0  # the kernel's dead band around the centre, in raw units

    def normalize(self, raw: int, deadzone: float) -> float:
        """Raw value -> joy_linux axis value in [-1, 1] (sign inverted; flat band and deadzone removed)."""
        centre = (self.minimum + self.maximum) / 2.0
        half = (self.maximum - self.minimum) / 2.0
        if half <= 0:
            return 0.0
        offset = raw - centre
        if abs(offset) <= self.flat:
            return 0.0
        span = half - self.flat if half > self.flat else half
        value = max(-1.0, min(1.0, (abs(offset) - self.flat) / span))
        if value <= deadzone:
            return 0.0
        value = (value - deadzone) / (1.0 - deadzone)
        return -value if offset > 0 else value


@dataclasses.dataclass(frozen=True)
class JoyLayout:
    """Joy order of a device's axes and buttons (see the module docstring)."""

    axes: tuple[AxisSpec, ...]
    buttons: tuple[int, ...]  # key codes

    @classmethod
    def from_capabilities(cls, capabilities: Mapping[int, Sequence[Any]]) -> JoyLayout:
        """From `InputDevice.capabilities(absinfo=True)`: {EV_ABS: [(code, AbsInfo), ...], EV_KEY: [code, ...]}."""
        axes = []
        for code, info in capabilities.get(EV_ABS, ()):
            axes.append(AxisSpec(int(code), int(info.min), int(info.max), int(info.flat)))
        keys = {int(k) for k in capabilities.get(EV_KEY, ()) if BTN_MISC <= int(k) <= KEY_MAX}
        buttons = sorted(k for k in keys if k >= BTN_JOYSTICK) + sorted(k for k in keys if k < BTN_JOYSTICK)
        return cls(tuple(sorted(axes, key=lambda a: a.code)), tuple(buttons))

    @staticmethod
    def is_gamepad(capabilities: Mapping[int, Sequence[Any]]) -> bool:
        """Has absolute axes and joystick or gamepad buttons (what joydev attaches to; not a mouse or keyboard)."""
        keys = {int(k) for k in capabilities.get(EV_KEY, ())}
        has_axes = any(True for _ in capabilities.get(EV_ABS, ()))
        return has_axes and any(BTN_JOYSTICK <= k < BTN_GAMEPAD + 0x10 for k in keys)


class JoyState:
    """The current Joy axes and buttons of one device, updated event by event."""

    def __init__(self, layout: JoyLayout, deadzone: float = 0.05) -> None:
        self.layout, self.deadzone = layout, deadzone
        self._axis_index = {a.code: i for i, a in enumerate(layout.axes)}
        self._button_index = {code: i for i, code in enumerate(layout.buttons)}
        self.axes = [0.0] * len(layout.axes)  # float in [-1, 1], Joy order
        self.buttons = [0] * len(layout.buttons)  # 0 / 1, Joy order

    def apply(self, event: Any) -> bool:
        """Apply one evdev `InputEvent` (type, code, value); True when the Joy state changed."""
        if event.type == EV_ABS and event.code in self._axis_index:
            i = self._axis_index[event.code]
            value = self.layout.axes[i].normalize(event.value, self.deadzone)
            changed, self.axes[i] = value != self.axes[i], value
            return changed
        if event.type == EV_KEY and event.code in self._button_index:
            i = self._button_index[event.code]
            value = 1 if event.value else 0  # 2 = kernel autorepeat of a held key: still pressed
            changed, self.buttons[i] = value != self.buttons[i], value
            return changed
        return False

    def set_all(self, raw_axes: Mapping[int, int], pressed: Iterable[int]) -> None:
        """Overwrite the state from a full device read: raw value per ABS code, the codes of the pressed keys."""
        pressed = set(pressed)
        for i, spec in enumerate(self.layout.axes):
            if spec.code in raw_axes:
                self.axes[i] = spec.normalize(raw_axes[spec.code], self.deadzone)
        self.buttons = [1 if code in pressed else 0 for code in self.layout.buttons]


class DeviceLost(OSError):
    """The gamepad disappeared (unplugged, out of range) or cannot be read."""


class Gamepad:
    """An evdev device (or anything with its interface) read without blocking into a `JoyState`."""

    def __init__(self, device: Any, deadzone: float = 0.05) -> None:
        self.device = device
        self.name, self.path = str(device.name), str(device.path)
        self.layout = JoyLayout.from_capabilities(device.capabilities(absinfo=True))
        self.state = JoyState(self.layout, deadzone)
        self.resync()

    def resync(self) -> None:
        """Read the whole state from the device (at start and after SYN_DROPPED)."""
        try:
            raw = {a.code: int(self.device.absinfo(a.code).value) for a in self.layout.axes}
            self.state.set_all(raw, self.device.active_keys())
        except OSError as exc:
            raise DeviceLost(f"{self.path} ({self.name}): {exc}") from exc

    def poll(self) -> bool:
        """Apply every pending event; True when the Joy state changed. Raises DeviceLost when the device is gone."""
        changed = False
        try:
            for event in self.device.read():
                if event.type == EV_SYN and event.code == SYN_DROPPED:
                    self.resync()  # the kernel dropped events: the accumulated state may be stale
                    changed = True
                elif self.state.apply(event):
                    changed = True
        except BlockingIOError:
            pass  # nothing (more) to read
        except DeviceLost:
            raise
        except OSError as exc:
            raise DeviceLost(f"{self.path} ({self.name}): {exc}") from exc
        return changed

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.device.close()


def open_gamepad(cfg: JoystickConfig) -> Gamepad:
    """Open `cfg.device`, or the first gamepad under /dev/input whose name contains `cfg.name`.

    Raises FileNotFoundError listing the input devices seen when none fits, and PermissionError with the usual
    fix when /dev/input/event* cannot be opened.
    """
    import evdev

    if cfg.device:
        try:
            device = evdev.InputDevice(cfg.device)
        except PermissionError as exc:
            raise PermissionError(f"{cfg.device}: {exc.strerror}; add the user to the 'input' group") from exc
        except OSError as exc:
            raise FileNotFoundError(f"joystick device {cfg.device}: {exc.strerror or exc}") from exc
        if not JoyLayout.is_gamepad(device.capabilities(absinfo=True)):
            device.close()
            raise FileNotFoundError(f"{cfg.device} ({device.name}) has no joystick axes and buttons")
        return Gamepad(device, cfg.deadzone)
    seen, denied = [], []
    for path in sorted(evdev.list_devices()):
        try:
            device = evdev.InputDevice(path)
        except PermissionError:
            denied.append(path)
            continue
        except OSError:
            continue
        seen.append(f"{path} ({device.name})")
        if JoyLayout.is_gamepad(device.capabilities(absinfo=True)) and cfg.name.lower() in device.name.lower():
            return Gamepad(device, cfg.deadzone)
        device.close()
    if denied and not seen:
        raise PermissionError(f"cannot open {', '.join(denied)}; add the user to the 'input' group")
    wanted = f" whose name contains {cfg.name!r}" if cfg.name else ""
    raise FileNotFoundError(f"no gamepad{wanted} under /dev/input; input devices: {', '.join(seen) or 'none'}")
