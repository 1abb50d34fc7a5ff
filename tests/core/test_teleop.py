"""rlt.teleop.teleop on literal Joy states: dead-man, chunks, buttons, dead zone, device files, the inverse map."""

import numpy as np
import pytest

from rlt.config import ConfigError
from rlt.execution import Chunking
from rlt.teleop.teleop import (
    JOY_CONFIG_DIR,
    JoyMapping,
    Teleop,
    TeleopConfig,
    axis_value,
    joy_axes_for_action,
    load_mapping,
)
from rlt.types import Event, Source

XBOX = JoyMapping()  # axes (1, 0, 4, 3); LB dead-man, RB hand-off, A success, B failure, Start reset
CFG = TeleopConfig()
C4 = Chunking(4, 2)  # C = 4
RELEASED = [0] * 11


def buttons(*pressed):
    out = list(RELEASED)
    for b in pressed:
        out[b] = 1
    return out


def axes(**values):
    out = [0.0] * 8
    for index, v in values.items():
        out[int(index[1:])] = v
    return out


def test_no_chunk_without_the_deadman():
    teleop = Teleop(XBOX, CFG, C4)
    out = teleop.on_joy(axes(a1=1.0), RELEASED, 10)
    assert out.chunk is None and out.events == [] and not teleop.engaged


def test_deadman_held_gives_a_human_chunk_of_the_commanded_delta():
    teleop = Teleop(XBOX, CFG, C4)
    # full left stick up (+dx), half right stick left (+dyaw), right stick down half-way (-dz)
    out = teleop.on_joy(axes(a1=1.0, a3=0.55, a4=-0.55), buttons(4), 1_000)
    assert [e.event for e in out.events] == [Event.INTERVENE_BEGIN]
    chunk = out.chunk
    assert chunk.source == Source.HUMAN and chunk.axis_names == ("dx", "dy", "dz", "dyaw")
    assert chunk.stamp_ns == 1_000 and chunk.data.shape == (4, 4)
    # 0.55 with a 0.1 dead zone reads (0.55 - 0.1) / 0.9 = 0.5
    np.testing.assert_allclose(chunk.data, np.tile([0.004, 0.0, -0.002, 0.025], (4, 1)), rtol=1e-6)
    second = teleop.on_joy(axes(a0=-1.0), buttons(4), 2_000)
    assert second.events == [] and second.chunk.chunk_id == chunk.chunk_id + 1
    np.testing.assert_allclose(second.chunk.data, np.tile([0.0, -0.004, 0.0, 0.0], (4, 1)))
    released = teleop.on_joy(axes(a0=-1.0), RELEASED, 3_000)
    assert released.chunk is None and [e.event for e in released.events] == [Event.INTERVENE_END]
    assert released.events[0].stamp_ns == 3_000 and teleop.repeat(3_100) is None


def test_buttons_send_one_event_per_press():
    teleop = Teleop(XBOX, CFG, C4)
    sequence = [buttons(5), buttons(5), RELEASED, buttons(0), buttons(1), buttons(7), buttons(0, 1)]
    events = [[e.event for e in teleop.on_joy(axes(), b, i).events] for i, b in enumerate(sequence)]
    assert events == [
        [Event.HANDOFF],
        [],  # still held: no repeat
        [],
        [Event.SUCCESS],
        [Event.FAILURE],  # A released, B pressed
        [Event.RESET],
        [Event.SUCCESS, Event.FAILURE],
    ]


def test_dead_zone_and_saturation():
    assert axis_value(0.05, 0.1) == 0.0 and axis_value(-0.1, 0.1) == 0.0
    assert axis_value(0.55, 0.1) == pytest.approx(0.5) and axis_value(-1.0, 0.1) == -1.0
    assert axis_value(3.0, 0.1) == 1.0  # out-of-range readings saturate
    teleop = Teleop(XBOX, CFG, C4)
    assert np.all(teleop.action([0.05, 0.09] + [0.0] * 6) == 0)
    assert teleop.action([0.0]) .tolist() == [0.0] * 4  # a Joy with fewer axes than mapped: unmapped read 0


def test_repeat_resends_the_latest_chunk_with_a_new_id():
    teleop = Teleop(XBOX, CFG, C4)
    first = teleop.on_joy(axes(a1=0.5), buttons(4), 100).chunk
    again = teleop.repeat(150)
    assert again.stamp_ns == 150 and again.chunk_id > first.chunk_id
    np.testing.assert_array_equal(again.data, first.data)


def test_a_silent_gamepad_releases_the_deadman_instead_of_repeating_its_last_deflection():
    teleop = Teleop(XBOX, CFG, C4)  # joy_timeout_s 0.5
    teleop.on_joy(axes(a1=0.5), buttons(4), 0)
    assert teleop.expire(400_000_000) is None and teleop.repeat(400_000_000) is not None  # still within the timeout
    released = teleop.expire(600_000_000)  # the joystick node died or the pad was unplugged with LB held
    assert released.event is Event.INTERVENE_END and "no joy for 0.60 s" in released.detail
    assert teleop.repeat(650_000_000) is None and not teleop.engaged and teleop.expire(700_000_000) is None
    again = teleop.on_joy(axes(a1=0.5), buttons(4), 800_000_000)  # back, dead-man still held: a new intervention
    assert [e.event for e in again.events] == [Event.INTERVENE_BEGIN] and again.chunk is not None
    both = Teleop(XBOX, CFG, C4)  # a node on sim time: both clocks must show the silence
    both.on_joy(axes(a1=0.5), buttons(4), 0, wall_ns=0)
    assert both.expire(10**10, wall_ns=100_000_000) is None  # sim time raced ahead, the pad repeats in wall time
    assert both.expire(10**10, wall_ns=600_000_000).event is Event.INTERVENE_END
    never = Teleop(XBOX, TeleopConfig(joy_timeout_s=0.0), C4)
    never.on_joy(axes(a1=0.5), buttons(4), 0)
    assert never.expire(10**12) is None and never.repeat(10**12) is not None


def test_inverse_mapping_round_trips_through_the_dead_zone():
    teleop = Teleop(XBOX, CFG, C4)
    action = np.array([0.001, -0.003, 0.004, -0.02])
    joy = joy_axes_for_action(XBOX, action, 8)
    assert joy[[1, 0, 4, 3]].tolist() == pytest.approx([0.325, -0.775, 1.0, -0.46])
    np.testing.assert_allclose(teleop.action(joy), action, atol=1e-7)
    clipped = joy_axes_for_action(XBOX, [0.01, 0, 0, 0], 8)  # beyond the scale: full deflection
    assert clipped[1] == 1.0 and teleop.action(clipped)[0] == pytest.approx(0.004)


def test_device_files_load_and_bad_mappings_name_the_field(tmp_path):
    names = sorted(p.stem for p in JOY_CONFIG_DIR.glob("*.yaml"))
    assert {"xbox", "ps4"} <= set(names)
    for name in names:
        mapping = load_mapping(name)
        assert mapping.device == name and len(mapping.axes) == 4
        Teleop(mapping, TeleopConfig())
    bad = tmp_path / "pad.yaml"
    bad.write_text("device: pad\nscales: [1.0]\n")
    with pytest.raises(ConfigError, match=r"JoyMapping.scales.*one scale per entry of axes"):
        load_mapping(bad)
    bad.write_text("device: pad\ndeadman: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) deadman.*pad.yaml"):
        load_mapping(bad)
    with pytest.raises(ConfigError, match="distinct"):
        JoyMapping(success_button=4)
    with pytest.raises(FileNotFoundError, match=r"no joystick mapping for device 'gamecube'.*known: .*xbox"):
        load_mapping("gamecube")
    with pytest.raises(ConfigError, match=r"axis_names has 3"):
        Teleop(XBOX, TeleopConfig(axis_names=("dx", "dy", "dz")))
