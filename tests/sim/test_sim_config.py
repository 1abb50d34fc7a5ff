"""SimConfig / ExpertConfig: presets, overrides and validation messages that name the field (no MuJoCo needed)."""

import math

import numpy as np
import pytest

from rlt.config import ConfigError
from rlt.sim.config import FROM_PRESET, MODES, PRESETS, ExpertConfig, SimConfig, check_mode, get_preset


def test_presets_set_the_hole_geometry():
    assert set(PRESETS) == {"easy", "main", "hard"}
    assert (SimConfig(preset="easy").hole_clearance, SimConfig(preset="easy").hole_chamfer) == (0.002, 0.001)
    assert (SimConfig().hole_clearance, SimConfig().hole_chamfer) == (0.0005, 0.001)
    assert (SimConfig(preset="hard").hole_clearance, SimConfig(preset="hard").hole_chamfer) == (0.0005, 0.0)


def test_explicit_clearance_and_chamfer_override_the_preset():
    cfg = SimConfig(preset="hard", clearance=0.001, chamfer=0.0005)
    assert (cfg.hole_clearance, cfg.hole_chamfer) == (0.001, 0.0005)
    assert SimConfig(clearance=FROM_PRESET).hole_clearance == PRESETS["main"].clearance
    assert SimConfig(chamfer=0.0).hole_chamfer == 0.0


def test_get_preset_suggests_the_closest_name():
    assert get_preset("main") is PRESETS["main"]
    with pytest.raises(ConfigError, match=r"unknown preset 'mian'; did you mean 'main'\? expected one of easy"):
        get_preset("mian")
    with pytest.raises(ConfigError, match=r"unknown preset 'xyz'; expected one of easy, main, hard"):
        get_preset("xyz")


def test_derived_quantities():
    cfg = SimConfig()
    assert cfg.substeps == 25
    assert cfg.max_steps("full") == 160 and cfg.max_steps("critical") == 100
    np.testing.assert_allclose(cfg.action_bounds, [0.004, 0.004, 0.004, 0.05])
    assert cfg.cameras == ("front", "wrist") and cfg.image_size == 96 and cfg.dt == 0.002


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"preset": "esay"}, r"SimConfig\.preset='esay': did you mean 'easy'\?"),
        ({"clearance": 0.0}, r"SimConfig\.clearance=0\.0: must be > 0"),
        ({"chamfer": -0.5}, r"SimConfig\.chamfer=-0\.5: must be in \[0, 0\.01\] m, or -1\.0"),
        ({"control_hz": 30}, r"SimConfig\.control_hz=30: .* must be an integer"),
        ({"cameras": ("front", "top")}, r"SimConfig\.cameras=.*unknown camera 'top'; expected names from front, wr"),
        ({"cameras": ("wrist", "wrist")}, r"SimConfig\.cameras=.*lists a camera twice"),
        ({"image_size": 8}, r"SimConfig\.image_size=8: must be in \[16, 1024\]"),
        ({"episode_seconds": 0.0}, r"SimConfig\.episode_seconds=0\.0: must be > 0"),
        ({"handoff_height": 0.01}, r"SimConfig\.handoff_height=0\.01: must be >= critical_height_max=0\.015"),
        ({"critical_height_max": 0.004}, r"SimConfig\.critical_height_max=0\.004: must be >= critical_height_min"),
        ({"handoff_xy_radius": 0.004}, r"SimConfig\.handoff_xy_radius=0\.004: must be >= sqrt\(2\)"),
        ({"socket_yaw_range": -0.1}, r"SimConfig\.socket_yaw_range=-0\.1: must be in \[0\.0, 1\.0\]"),
        ({"dt": 0.05}, r"SimConfig\.dt=0\.05: must be in"),
    ],
)
def test_sim_config_validation_names_the_field(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        SimConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"bias_xy_sigma": -0.001}, r"ExpertConfig\.bias_xy_sigma=-0\.001: must be in \[0\.0, 0\.012\]"),
        ({"dart_yaw_sigma": 1.0}, r"ExpertConfig\.dart_yaw_sigma=1\.0: must be in \[0\.0, 0\.78"),
        ({"seed": -1}, r"ExpertConfig\.seed=-1: must be in"),
    ],
)
def test_expert_config_validation_names_the_field(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ExpertConfig(**kwargs)


def test_configs_round_trip_through_dicts():
    cfg = SimConfig(preset="easy", cameras=("wrist",), image_size=64)
    assert SimConfig.from_dict(cfg.to_dict()) == cfg
    assert SimConfig.from_dict({"cameras": []}).cameras == ()
    expert = ExpertConfig(bias_xy_sigma=0.001, seed=3)
    assert ExpertConfig.from_dict(expert.to_dict()) == expert
    assert math.isclose(ExpertConfig().bias_yaw_sigma, math.radians(1))


def test_unknown_mode_is_rejected():
    assert MODES == ("full", "critical")
    check_mode("critical")
    with pytest.raises(ValueError, match=r"unknown episode mode 'crit'; expected one of full, critical"):
        check_mode("crit")
    with pytest.raises(ValueError, match="unknown episode mode"):
        SimConfig().max_steps("fast")
