"""rlt.teleop.joystick with literal evdev events: joydev layout order, joy_linux signs and dead zones,
SYN_DROPPED resync, a lost device; and the whole path evdev event -> Joy -> teleop chunk."""

import errno

import numpy as np
import pytest

evdev = pytest.importorskip("evdev")
from evdev import AbsInfo, InputEvent  # noqa: E402
from evdev import ecodes as e  # noqa: E402

from rlt.execution import Chunking  # noqa: E402
from rlt.teleop.joystick import AxisSpec, DeviceLost, Gamepad, JoyLayout, JoyState, JoystickConfig, open_gamepad  # noqa: E402
from rlt.teleop.teleop import Teleop, TeleopConfig, load_mapping  # noqa: E402
from rlt.types import Event  # noqa: E402

STICK = AbsInfo(value=0, min=-32768, max=32767, fuzz=16, flat=128, resolution=0)
TRIGGER = AbsInfo(value=0, min=0, max=255, fuzz=0, flat=0, resolution=0)
HAT = AbsInfo(value=0, min=-1, max=1, fuzz=0, flat=0, resolution=0)
# what the xpad driver reports for an Xbox pad (capabilities(absinfo=True)), listed out of order on purpose
XPAD = {
    e.EV_KEY: [e.BTN_MODE, e.BTN_A, e.BTN_B, e.BTN_X, e.BTN_Y, e.BTN_TL, e.BTN_TR, e.BTN_SELECT, e.BTN_START,
               e.BTN_THUMBL, e.BTN_THUMBR, e.KEY_RECORD],
    e.EV_ABS: [(e.ABS_HAT0Y, HAT), (e.ABS_X, STICK), (e.ABS_Y, STICK), (e.ABS_Z, TRIGGER), (e.ABS_RX, STICK),
               (e.ABS_RY, STICK), (e.ABS_RZ, TRIGGER), (e.ABS_HAT0X, HAT)],
}


def ev(kind, code, value):
    return InputEvent(0, 0, kind, code, value)


def test_layout_follows_the_joydev_order():
    layout = JoyLayout.from_capabilities(XPAD)
    assert [a.code for a in layout.axes] == [e.ABS_X, e.ABS_Y, e.ABS_Z, e.ABS_RX, e.ABS_RY, e.ABS_RZ,
                                             e.ABS_HAT0X, e.ABS_HAT0Y]
    # A B X Y LB RB Back Start Guide LS RS (KEY_RECORD < BTN_MISC is not a joystick button)
    assert list(layout.buttons) == [e.BTN_A, e.BTN_B, e.BTN_X, e.BTN_Y, e.BTN_TL, e.BTN_TR, e.BTN_SELECT,
                                    e.BTN_START, e.BTN_MODE, e.BTN_THUMBL, e.BTN_THUMBR]
    joystick = {e.EV_KEY: [e.BTN_BASE, e.BTN_TRIGGER, e.BTN_0], e.EV_ABS: [(e.ABS_X, STICK)]}
    assert list(JoyLayout.from_capabilities(joystick).buttons) == [e.BTN_TRIGGER, e.BTN_BASE, e.BTN_0]
    assert JoyLayout.is_gamepad(XPAD) and JoyLayout.is_gamepad(joystick)
    assert not JoyLayout.is_gamepad({e.EV_KEY: [e.KEY_A, e.BTN_LEFT], e.EV_REL: [e.REL_X]})  # keyboard + mouse


def test_events_become_joy_linux_values():
    state = JoyState(JoyLayout.from_capabilities(XPAD), deadzone=0.0)
    assert state.axes == [0.0] * 8 and state.buttons == [0] * 11
    assert state.apply(ev(e.EV_ABS, e.ABS_Y, -32768))  # left stick fully up
    assert state.axes[1] == 1.0  # joy_linux: up is +1
    state.apply(ev(e.EV_ABS, e.ABS_X, 32767))  # fully right
    assert state.axes[0] == -1.0  # right is -1
    state.apply(ev(e.EV_ABS, e.ABS_X, 100))  # inside the kernel's flat band (128)
    assert state.axes[0] == 0.0
    state.apply(ev(e.EV_ABS, e.ABS_RX, -(128 + 16320)))  # half-way left past the flat band
    assert state.axes[3] == pytest.approx(0.5, abs=1e-3)
    state.apply(ev(e.EV_ABS, e.ABS_Z, 0))  # trigger released reads +1, pressed -1
    assert state.axes[2] == 1.0
    state.apply(ev(e.EV_ABS, e.ABS_Z, 255))
    assert state.axes[2] == -1.0
    state.apply(ev(e.EV_ABS, e.ABS_HAT0X, -1))
    assert state.axes[6] == 1.0
    assert state.apply(ev(e.EV_KEY, e.BTN_TL, 1)) and state.buttons[4] == 1
    assert not state.apply(ev(e.EV_KEY, e.BTN_TL, 2))  # kernel autorepeat of a held key: no change
    state.apply(ev(e.EV_KEY, e.BTN_TL, 0))
    assert state.buttons[4] == 0
    assert not state.apply(ev(e.EV_SYN, e.SYN_REPORT, 0)) and not state.apply(ev(e.EV_KEY, e.KEY_RECORD, 1))


def test_deadzone_rescales_like_joy_linux():
    axis = AxisSpec(e.ABS_X, -100, 100)
    assert axis.normalize(-4, 0.05) == 0.0
    assert axis.normalize(-100, 0.05) == 1.0 and axis.normalize(100, 0.05) == -1.0
    assert axis.normalize(-(5 + 0.5 * 95), 0.05) == pytest.approx(0.5)


class FakeDevice:
    """Has the evdev InputDevice interface the Gamepad uses; events are real evdev InputEvent objects."""

    name, path = "Microsoft X-Box 360 pad", "/dev/input/event7"

    def __init__(self):
        self.pending, self.raw_axes, self.keys, self.lost, self.closed = [], {}, [], False, False

    def capabilities(self, absinfo=True):
        return XPAD

    def absinfo(self, code):
        return STICK._replace(value=self.raw_axes.get(code, 0))

    def active_keys(self):
        return list(self.keys)

    def read(self):
        if self.lost:
            raise OSError(errno.ENODEV, "No such device")
        if not self.pending:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        events, self.pending = self.pending, []
        yield from events

    def close(self):
        self.closed = True


def test_gamepad_reads_events_resyncs_after_drops_and_reports_loss():
    device = FakeDevice()
    device.keys = [e.BTN_START]  # held while the node starts: read from the device, not from events
    pad = Gamepad(device, deadzone=0.0)
    assert pad.state.buttons[7] == 1
    assert not pad.poll()  # nothing pending
    device.pending = [ev(e.EV_ABS, e.ABS_Y, -32768), ev(e.EV_SYN, e.SYN_REPORT, 0)]
    assert pad.poll() and pad.state.axes[1] == 1.0
    device.keys, device.raw_axes = [e.BTN_TL], {e.ABS_Y: 0}
    device.pending = [ev(e.EV_SYN, e.SYN_DROPPED, 0)]  # events were lost: take the whole state again
    assert pad.poll() and pad.state.buttons[4] == 1 and pad.state.buttons[7] == 0 and pad.state.axes[1] == 0.0
    device.lost = True
    with pytest.raises(DeviceLost, match="event7"):
        pad.poll()
    pad.close()
    assert device.closed


def test_evdev_events_drive_the_teleop_mapping_end_to_end():
    pad = Gamepad(FakeDevice(), deadzone=0.0)
    teleop = Teleop(load_mapping("xbox"), TeleopConfig(), Chunking(3, 0))
    pad.device.pending = [ev(e.EV_KEY, e.BTN_TL, 1), ev(e.EV_ABS, e.ABS_Y, -32768), ev(e.EV_ABS, e.ABS_RX, 32767)]
    pad.poll()
    out = teleop.on_joy(pad.state.axes, pad.state.buttons, 5)
    assert [x.event for x in out.events] == [Event.INTERVENE_BEGIN]
    np.testing.assert_allclose(out.chunk.data, np.tile([0.004, 0.0, 0.0, -0.05], (3, 1)), rtol=1e-6)
    pad.device.pending = [ev(e.EV_KEY, e.BTN_TL, 0), ev(e.EV_KEY, e.BTN_TR, 1)]
    pad.poll()
    out = teleop.on_joy(pad.state.axes, pad.state.buttons, 6)
    assert out.chunk is None and [x.event for x in out.events] == [Event.HANDOFF, Event.INTERVENE_END]


def test_open_gamepad_names_what_it_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"joystick device .*nope"):
        open_gamepad(JoystickConfig(device=str(tmp_path / "nope")))
    try:
        open_gamepad(JoystickConfig(name="no such pad xyz"))
    except FileNotFoundError as exc:
        assert "no gamepad whose name contains 'no such pad xyz'" in str(exc)
    except PermissionError as exc:
        assert "input" in str(exc)
