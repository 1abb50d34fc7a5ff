"""`rlt bag replay BAG`: the `replay` session (launch/sessions.yaml): the bag player under sim time, plus a shadow
actor acting on the replayed VLA outputs (its chunks on shadow/action_chunk) unless --no-shadow."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="rosbag2 folder (e.g. written by rlt bag record)")
    parser.add_argument("--rate", type=float, default=1.0, help="1 = recorded timing, 2 = twice as fast, 0 = no waits")
    parser.add_argument("--topics", nargs="+", default=[], metavar="PATTERN", help="play only these (glob patterns)")
    parser.add_argument("--exclude", nargs="+", default=[], metavar="PATTERN", help="do not play these")
    parser.add_argument("--loop", action="store_true", help="start again at the end (until Ctrl-C)")
    parser.add_argument("--actor", type=Path, help="shadow actor weights (actor_weights.npz); default: the reference")
    parser.add_argument("--no-shadow", action="store_true", help="only the player")
    parser.add_argument("--namespace", default="", help="ROS namespace for every node")


def shadow_rl_params(weights: Path) -> dict[str, object]:
    """RL sizes the shadow actor needs for `weights`: from the learner checkpoint beside it, else its architecture."""
    import json

    from rlt.rl.config import RLConfig
    from rlt.rl.weights_file import load_weights

    latest = weights.parent / "LATEST"
    if latest.is_file():
        meta = json.loads((weights.parent / latest.read_text().strip() / "meta.json").read_text())
        cfg = RLConfig.from_dict(meta["config"])
    else:
        arch = json.loads(load_weights(weights).architecture)
        default = RLConfig()
        cfg = RLConfig(token_dim=arch["state_dim"] - default.proprio_dim, chunk_len=arch["chunk_len"],
                       action_dim=arch["action_dim"], hidden=tuple(arch["hidden"]), use_reference=arch["use_reference"])
    keys = ("token_dim", "proprio_dim", "chunk_len", "action_dim", "hidden", "use_reference", "action_scale",
            "proprio_scale")
    return {f"rl.{k}": getattr(cfg, k) for k in keys}


def run(args: argparse.Namespace) -> int:
    from rlt.app.launch import Supervisor, load_session, param_text, plan

    if not args.bag.is_dir():
        raise FileNotFoundError(f"bag {args.bag} does not exist")
    player = {"player.bag": str(args.bag.resolve()), "player.rate": args.rate, "player.loop": args.loop}
    if args.topics:
        player["player.topics"] = args.topics
    if args.exclude:
        player["player.exclude"] = args.exclude
    overrides: dict[str, dict[str, object]] = {"bag_player": player}
    if args.actor is not None:
        if not args.actor.is_file():
            raise FileNotFoundError(f"--actor {args.actor} does not exist")
        overrides["shadow_actor"] = {"weights_file": str(args.actor.resolve()), **shadow_rl_params(args.actor)}
    if args.no_shadow:
        player["player.wait_for"] = []
    text = {node: {k: param_text(v) for k, v in values.items()} for node, values in overrides.items()}
    launches = plan(load_session("replay"), overrides=text, namespace=args.namespace)
    if args.no_shadow:
        launches = [launch for launch in launches if launch.node.name == "bag_player"]
    print(f"replaying {args.bag} at rate {args.rate} ({', '.join(x.node.name for x in launches)}; Ctrl-C stops)")
    supervisor = Supervisor(launches)
    code = supervisor.run()
    print(f"replay stopped: {supervisor.stop_reason}")
    return code
