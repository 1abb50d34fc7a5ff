"""`--set SECTION.FIELD=VALUE` (rlt.overrides): one grammar for every command, checked against its configs."""

import argparse
import dataclasses
import importlib.util

import pytest

from rlt import cli, overrides
from rlt.config import Config, ConfigError
from rlt.models.config import TokenConfig, VlaConfig, VlaTrainConfig

HAS_MUJOCO = importlib.util.find_spec("mujoco") is not None


@dataclasses.dataclass(frozen=True)
class Demo(Config):
    """A config for the tests."""

    sigma: float = 0.03  # exploration std
    # group heading after a blank line: no field's comment

    gamma: float = 0.99
    scale: tuple[float, ...] = (0.004, 0.05)  # per-axis bound
    #                                           continued under itself
    name: str = "main"  # a name
    on: bool = False

    def validate(self) -> None:
        self.require_range("sigma", 0.0, 1.0)


SECTIONS = {"rl": Demo, "vla": VlaConfig}


def _subparser(path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = cli.build_parser()
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


def _help(path: tuple[str, ...]) -> str:
    return " ".join(_subparser(path).format_help().split())  # whitespace-insensitive: help text is wrapped


def test_items_parse_to_typed_values_and_apply_through_validation():
    sets = overrides.parse(["rl.sigma=1", "rl.scale=[0.001, 0.004]", "rl.name=1.0", "rl.on=true", "rl.gamma=3e-1"],
                           SECTIONS)
    assert [(o.section, o.field, o.value) for o in sets] == [
        ("rl", "sigma", 1.0), ("rl", "scale", (0.001, 0.004)), ("rl", "name", "1.0"), ("rl", "on", True),
        ("rl", "gamma", 0.3)]  # an int where a float is expected, YAML 1.1's "3e-1", a str field as written
    assert [str(o) for o in sets[:3]] == ["rl.sigma=1.0", "rl.scale=[0.001, 0.004]", "rl.name='1.0'"]
    got = overrides.build(SECTIONS, ["rl.sigma=0.1", "vla.d_model=32", "rl.sigma=0.2", "vla.cameras=[wrist]"])
    assert (got["rl"].sigma, got["vla"].d_model, got["vla"].cameras) == (0.2, 32, ("wrist",))  # the last one wins
    base = {"rl": Demo(gamma=0.5)}
    assert overrides.apply(base, ["rl.sigma=0.5"])["rl"] == Demo(sigma=0.5, gamma=0.5)
    assert overrides.apply(base, [])["rl"] is base["rl"]
    with pytest.raises(ConfigError, match=r"Demo\.sigma=2\.0: must be in"):  # the class validates
        overrides.build(SECTIONS, ["rl.sigma=2"])
    train = overrides.build({"vla": VlaConfig, "train": VlaTrainConfig}, ["train.lr=3e-4", "train.steps=7"])["train"]
    assert (train.lr, train.steps) == (3e-4, 7)


@pytest.mark.parametrize(("item", "message"), [
    ("rl.sigam=0.1", "unknown field rl.sigam; did you mean rl.sigma?"),
    ("rll.sigma=0.1", "unknown section rll; sections: rl, vla; did you mean rl.sigma?"),
    ("sigma=0.1", "expected SECTION.FIELD=VALUE (sections: rl, vla); did you mean rl.sigma?"),
    ("vla.zzz=1", "unknown field vla.zzz; the fields of vla: cameras, image_size,"),
    ("rl.sigma", "expected SECTION.FIELD=VALUE"),
])
def test_unknown_names_are_errors_naming_the_close_match(item, message):
    with pytest.raises(ConfigError) as err:
        overrides.parse([item], SECTIONS)
    assert message in str(err.value)
    assert isinstance(err.value, ValueError)  # rlt.cli prints it as one line, exit 2


@pytest.mark.parametrize(("item", "message"), [
    ("rl.sigma=abc", "--set rl.sigma='abc': expected float, got str"),
    ("rl.on=1", "--set rl.on=1: expected bool, got int"),
    ("vla.d_model=3.5", "--set vla.d_model=3.5: expected int, got float"),
    ("rl.scale=0.1", "expected a list of float (a list is written [a, b]"),
    ("rl.sigma=[1,", "--set rl.sigma='[1,': not valid YAML"),
])
def test_a_bad_value_names_the_expected_and_the_given_type(item, message):
    with pytest.raises(ConfigError) as err:
        overrides.parse([item], SECTIONS)
    assert message in str(err.value)


def test_the_cli_turns_a_typo_into_one_line_and_exit_2(capsys):
    assert cli.main(["train", "token", "--set", "token.token_dm=8"]) == 2
    assert "unknown field token.token_dm; did you mean token.token_dim?" in capsys.readouterr().err


def test_field_docs_skip_group_headings_and_join_continued_comments():
    docs = Demo.field_docs()
    assert docs["sigma"] == "exploration std" and docs["gamma"] == ""
    assert docs["scale"] == "per-axis bound continued under itself" and docs["name"] == "a name"


def test_help_epilog_lists_each_field_with_type_default_and_meaning():
    text = overrides.help_epilog({"rl": Demo}, width=80, defaults={"rl": {"sigma": 0.07}}, note="from a file")
    assert "settable fields (--set SECTION.FIELD=VALUE); from a file:" in text
    assert "  rl.sigma: float = 0.07 (class default 0.03)\n      exploration std" in text
    assert "  rl.scale: list[float] = [0.004, 0.05]\n      per-axis bound continued under itself" in text
    assert "  rl.on: bool = false" in text
    assert max(len(line) for line in text.splitlines()) <= 80


@pytest.mark.parametrize(("path", "sections"), [
    (("session",), {"session": "rlt.app.session:SessionConfig"}),
    (("train", "vla"), {"vla": VlaConfig, "train": VlaTrainConfig}),
    (("train", "token"), {"token": TokenConfig}),
    (("train", "image-features"), {"features": "rlt.models.config:ImageFeaturesConfig"}),
    (("sim", "rollouts"), {"rollout": "rlt.sim.config:RolloutConfig"}),
    (("bench", "session"), {"rl": "rlt.rl.config:RLConfig", "human": "rlt.sim.human:ScriptedHumanConfig"}),
    (("bench", "sweep"), {"rl": "rlt.rl.config:RLConfig", "human": "rlt.sim.human:ScriptedHumanConfig"}),
])
def test_each_commands_help_lists_its_settable_fields_with_their_docs(path, sections):
    text = _help(path)
    assert "--set SECTION.FIELD=VALUE" in text
    for section, cls in sections.items():
        if section == "human" and not HAS_MUJOCO:
            assert "human: rlt.sim.human:ScriptedHumanConfig (its fields cannot be listed here" in text
            continue
        cls = overrides.resolve({section: cls})[section]
        for name, doc in cls.field_docs().items():
            assert f"{section}.{name}:" in text
            assert " ".join(doc.split()) in text, f"{section}.{name}'s comment is missing from rlt {path} --help"


def test_session_takes_its_fields_through_set():
    from rlt.commands import session

    args = _subparser(("session",)).parse_args(["--set", "session.rl_minutes=5", "--set", "session.variants=[]",
                                                 "--set", "session.tiny=true"])
    cfg = overrides.build(session.SECTIONS, args.set)["session"]
    assert (cfg.rl_minutes, cfg.variants, cfg.tiny) == (5.0, (), True)
    assert "session.rl_minutes: float = 15.0 critical-phase sim time of online RL data" in _help(("session",))


def test_bench_session_set_becomes_the_in_process_overrides():
    from rlt.commands.bench_session import in_process_config

    args = _subparser(("bench", "session")).parse_args(["--set", "rl.sigma=0.03"])
    cfg = in_process_config(args, "model.onnx")
    assert (cfg.model_path, cfg.rl_overrides, cfg.human_overrides) == ("model.onnx", ("sigma=0.03",), ())
    args = _subparser(("bench", "sweep")).parse_args(["--set", "rl.action_scale=[0.001,0.001,0.004,0.02]",
                                                      "--set", "rl.seed=5"])
    cfg = in_process_config(args, "m.onnx", ("rl.seed=1",))
    assert cfg.rl_overrides == ("action_scale=[0.001, 0.001, 0.004, 0.02]", "seed=5", "seed=1")  # the sweep's wins
    with pytest.raises(ConfigError, match=r"unknown field rl\.sigam; did you mean rl\.sigma"):
        in_process_config(_subparser(("bench", "session")).parse_args(["--set", "rl.sigam=1"]), "m.onnx")


def test_bench_session_set_human_becomes_the_human_overrides():
    pytest.importorskip("mujoco")  # ScriptedHumanConfig lives in rlt.sim.human
    from rlt.commands.bench_session import in_process_config

    args = _subparser(("bench", "session")).parse_args(["--set", "human.stall_steps=10", "--set", "rl.stride=1"])
    cfg = in_process_config(args, "m.onnx")
    assert (cfg.rl_overrides, cfg.human_overrides) == (("stride=1",), ("stall_steps=10",))
    with pytest.raises(ConfigError, match="expected int, got float"):
        in_process_config(_subparser(("bench", "session")).parse_args(["--set", "human.stall_steps=1.5"]), "m")


def test_launch_keeps_node_section_field():
    text = _help(("launch",))
    assert "NODE:SECTION.FIELD=VALUE" in text and "actor:rl.sigma=0.05" in text
