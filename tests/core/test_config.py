"""Config base: coercion, validation messages naming fields, dict loading that rejects unknown keys."""

import dataclasses

import pytest

from rlt.config import Config, ConfigError


@dataclasses.dataclass(frozen=True)
class Example(Config):
    rate_hz: float = 20.0
    steps: int = 3
    mode: str = "full"
    scales: tuple[float, ...] = (1.0, 2.0)
    on: bool = False

    def validate(self) -> None:
        self.require_positive("rate_hz", "steps")
        self.require_choice("mode", ("full", "critical"))
        if len(self.scales) != self.steps - 1:
            self.fail("scales", f"needs steps - 1 = {self.steps - 1} entries")


def test_defaults_and_coercion():
    cfg = Example(rate_hz=50, scales=[1, 3])
    assert cfg.rate_hz == 50.0 and isinstance(cfg.rate_hz, float)
    assert cfg.scales == (1.0, 3.0)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"rate_hz": 0.0}, r"Example\.rate_hz=0\.0: must be > 0"),
        ({"mode": "fast"}, r"Example\.mode='fast': must be one of full, critical"),
        ({"steps": 2}, r"Example\.scales=\(1\.0, 2\.0\): needs steps - 1 = 1 entries"),
        ({"steps": "3"}, r"Example\.steps='3': expected int, got str"),
        ({"on": 1}, r"Example\.on=1: expected bool"),
        ({"steps": True}, r"Example\.steps=True: expected int, got bool"),
        ({"rate_hz": float("nan")}, r"Example\.rate_hz=nan: must be finite"),
        ({"scales": "1,2"}, r"Example\.scales='1,2': expected a list of float"),
    ],
)
def test_validation_names_the_field(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Example(**kwargs)


def test_from_dict_rejects_unknown_keys():
    assert Example.from_dict({"steps": 2, "scales": [1.0]}).steps == 2
    with pytest.raises(ConfigError, match=r"unknown key\(s\) rate in sim.yaml; valid keys: mode, on, rate_hz"):
        Example.from_dict({"rate": 1}, source="sim.yaml")


def test_round_trip_and_replace():
    cfg = Example(mode="critical")
    assert Example.from_dict(cfg.to_dict()) == cfg
    assert cfg.replace(on=True).on is True


def test_unsupported_field_type_is_rejected():
    @dataclasses.dataclass(frozen=True)
    class Bad(Config):
        value: dict = dataclasses.field(default_factory=dict)

    with pytest.raises(TypeError, match=r"Bad\.value"):
        Bad()
