"""`rlt bench session`: the sim RLT session in one process (no ROS): RLT vs base throughput on common seeds.

Also owns the options it shares with `rlt bench sweep`, among them `--set rl.FIELD=VALUE` and
`--set human.FIELD=VALUE` (`rlt.overrides`), which become InProcessConfig's "FIELD=VALUE" rl and human overrides.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rlt import overrides

if TYPE_CHECKING:
    from rlt.app.inprocess import InProcessConfig

# the configs `--set` reaches: the params file's rl block (actor and learner) and its scripted operator
SECTIONS: overrides.Sections = {"rl": "rlt.rl.config:RLConfig", "human": "rlt.sim.human:ScriptedHumanConfig"}


def add_in_process_arguments(parser: argparse.ArgumentParser) -> None:
    """The options `rlt bench session` and `rlt bench sweep` share (defaults: rlt.app.inprocess.InProcessConfig)."""
    from rlt.app.inprocess import InProcessConfig
    from rlt.app.session import OPERATORS

    d = InProcessConfig()
    parser.add_argument("--params", default=None, help="session parameters (default: launch/config/sim.yaml)")
    parser.add_argument("--state", choices=("token", "oracle"), default=d.state,
                        help="RL state: the model's z_rl, or the sim's true tip-to-hole offset (an upper bound)")
    parser.add_argument("--minutes", type=float, default=d.rl_minutes,
                        help=f"critical-phase minutes of RL data (default {d.rl_minutes:g})")
    parser.add_argument("--episodes", type=int, default=d.eval_episodes,
                        help=f"evaluation episodes per policy (default {d.eval_episodes})")
    parser.add_argument("--seeds", choices=("tuning", "evaluation"), default=d.seeds,
                        help="evaluation seed range of rlt.seeds (default: tuning; evaluation is for final figures "
                             "only, never for choosing settings)")
    parser.add_argument("--operator", choices=tuple(OPERATORS), default=d.operator,
                        help="who may take over in training, as in `rlt session` (noisy: the params file's scripted "
                             "operator with a person's perception errors; privileged: the same on the true pose, "
                             "an upper bound; none: autonomous)")
    overrides.add_set_argument(parser, SECTIONS, "rl.sigma=0.03 --set human.stall_steps=10", _params_defaults,
                               "defaults are the params file's where it sets them (launch/config/sim.yaml)")


def in_process_config(args: argparse.Namespace, model: str, extra_sets: Sequence[str] = ()) -> InProcessConfig:
    """The InProcessConfig of the shared options for `model`, with further `--set` items appended (they win)."""
    from rlt.app.inprocess import InProcessConfig

    sets = overrides.parse([*args.set, *extra_sets], SECTIONS)
    rl, human = (tuple(f"{o.field}={o.text}" for o in sets if o.section == name) for name in ("rl", "human"))
    cfg = InProcessConfig(model_path=model, state=args.state, rl_minutes=args.minutes, eval_episodes=args.episodes,
                          seeds=args.seeds, rl_overrides=rl, operator=args.operator, human_overrides=human)
    return cfg.replace(params_file=args.params) if args.params else cfg


def _params_defaults() -> dict[str, dict[str, Any]]:
    """The rl and human values of the default params file, as `rlt.app.inprocess` reads them ({} if unreadable)."""
    import yaml

    from rlt.app.inprocess import SIM_PARAMS, session_rl_config
    from rlt.rl.config import RLConfig

    try:
        rl = session_rl_config(SIM_PARAMS, RLConfig().token_dim).to_dict()  # its rl block on the class defaults
        human = yaml.safe_load(SIM_PARAMS.read_text())["sim_human"]["ros__parameters"].get("human", {})
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {"rl": rl, "human": human}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="artifacts/vla.onnx", help="VLA + RL-token ONNX (built by rlt session)")
    add_in_process_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from rlt.app.inprocess import format_report, run_inprocess

    print(format_report(run_inprocess(in_process_config(args, args.model))))
    return 0
