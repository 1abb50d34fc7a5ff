"""rlt bag eval on a literal bag: the checkpoint actor's chunks against the executed ones, critic values, outputs."""

import json

import numpy as np
import pytest

from rlt.bags.evaluate import evaluate_bag, load_model
from rlt.bags.io import BagWriter, header, make_typestore, time_msg
from rlt.rl.config import RLConfig
from rlt.rl.learner import Learner
from rlt.rl.policy import ChunkPolicy
from rlt.rl.weights_file import save_weights
from rlt.types import PolicyWeights, Source

AXES = ["dx", "dy", "dz", "dyaw"]
RL = RLConfig(token_dim=6, hidden=(16, 16), batch_size=4, learning_starts=4, buffer_capacity=100, seed=3)


def write_bag(path, policy, store):
    """Two episodes: boundaries every 10 steps in the critical phase; the actor's mean executed on even boundaries,
    the VLA reference on odd ones, a human chunk once; plus an approach-phase request (not evaluated)."""
    t = store.types
    rng = np.random.default_rng(0)
    expected = []
    with BagWriter(path, store) as bag:
        bag.add_topic("/vla/output", "rlt_msgs/msg/VlaOutput")
        bag.add_topic("/action_chunk", "rlt_msgs/msg/ActionChunk")
        bag.add_topic("/human/action_chunk", "rlt_msgs/msg/ActionChunk")  # must not be taken for the executed one
        k = 0
        for episode in (4, 5):
            for i, step in enumerate(range(0, 60, 10)):
                k += 1
                stamp = k * 10**8
                phase = 0 if step == 0 else 1
                z, proprio = rng.normal(size=6).astype(np.float32), rng.normal(0, 0.1, 12).astype(np.float32)
                ref = rng.normal(0, 1e-3, (10, 4)).astype(np.float32)
                if i % 2 == 0:
                    data, source = policy.act(z, proprio, ref, explore=False).data, Source.ACTOR
                else:
                    data, source = ref, Source.VLA
                if episode == 5 and step == 30:
                    data, source = np.full((10, 4), 1e-3, np.float32), Source.HUMAN
                if phase:
                    expected.append((episode, step, source))
                req = t["rlt_msgs/msg/ChunkRequest"](
                    header=header(store, stamp), episode_id=episode, step=step, phase=phase, need_chunk=True,
                    terminal=0, axis_names=AXES, executed=np.zeros(0, np.float32), sources=np.zeros(0, np.uint8),
                    rewards=np.zeros(0, np.float32))
                reference = t["rlt_msgs/msg/ActionChunk"](
                    header=header(store, stamp), chunk_id=k, source=0, policy_version=-1, axis_names=AXES,
                    vla_stamp=time_msg(store, stamp + 1), sent_stamp=time_msg(store, 0),
                    chunk_len=10, data=ref.ravel())
                out = t["rlt_msgs/msg/VlaOutput"](header=header(store, stamp), request=req, model_id="m",
                                                  reference=reference, rl_token=z, proprio=proprio)
                bag.write("/vla/output", stamp, out)
                chunk = t["rlt_msgs/msg/ActionChunk"](
                    header=header(store, stamp), chunk_id=k, source=int(source), policy_version=1, axis_names=AXES,
                    vla_stamp=time_msg(store, stamp + 1), sent_stamp=time_msg(store, stamp + 1), chunk_len=10,
                    data=np.asarray(data, np.float32).ravel())
                bag.write("/action_chunk", stamp + 1, chunk)
    return expected


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval")
    learner = Learner(RL)
    learner.save_checkpoint(tmp / "learner")
    weights = PolicyWeights(7, learner.actor_state(), learner.agent.updates, learner.architecture())
    save_weights(tmp / "learner" / "actor_weights.npz", weights)
    save_weights(tmp / "bare" / "actor_weights.npz", weights)
    policy = ChunkPolicy(RL)
    policy.load_weights(7, weights.tensors, weights.architecture)
    store = make_typestore()
    expected = write_bag(tmp / "bag", policy, store)
    return tmp, expected


def test_actor_chunks_compared_with_the_executed_ones_and_critic_values(setup):
    tmp, expected = setup
    summary = evaluate_bag(tmp / "bag", tmp / "learner", tmp / "out")
    report = json.loads((tmp / "out" / "eval.json").read_text())
    chunks = report["chunks"]
    assert [(c["episode"], c["step"], c["source"]) for c in chunks] == [(e, s, x.name.lower()) for e, s, x in expected]
    for c in chunks:
        if c["source"] == "actor":  # the same actor executed its mean: no difference
            assert c["rms_actor_vs_executed"] < 1e-5
        else:
            assert c["rms_actor_vs_executed"] > 1e-3
        assert np.isfinite([c["q_executed"], c["q_actor"], c["q_reference"]]).all()
        if c["source"] == "vla":
            assert c["q_executed"] == pytest.approx(c["q_reference"])
            assert c["rms_executed_vs_reference"] == 0.0
    assert summary["critic"] and summary["episodes"] == 2
    assert summary["by_source"]["human"]["chunks"] == 1 and summary["by_source"]["actor"]["chunks"] == 4
    for name in ("chunk_diff.png", "critic_values.png"):
        data = (tmp / "out" / name).read_bytes()
        assert data[:4] == b"\x89PNG" and len(data) > 10_000


def test_actor_snapshot_alone_has_no_critic_and_beside_a_checkpoint_borrows_it(setup):
    tmp, _ = setup
    bare = evaluate_bag(tmp / "bag", tmp / "bare" / "actor_weights.npz", tmp / "out_bare")
    assert not bare["critic"] and "q_actor" not in json.loads((tmp / "out_bare" / "eval.json").read_text())["chunks"][0]
    assert bare["by_source"]["actor"]["mean_rms_actor_vs_executed"] < 1e-5
    beside = load_model(tmp / "learner" / "actor_weights.npz", proprio_dim=12)
    assert beside.critic is not None and "version 7" in beside.source
    one = evaluate_bag(tmp / "bag", tmp / "learner", tmp / "out_one", episodes=[5])
    assert one["episodes"] == 1 and one["all"]["chunks"] == 5
    with pytest.raises(ValueError, match="proprio_dim"):
        load_model(tmp / "learner", proprio_dim=5)
    with pytest.raises(FileNotFoundError, match="LATEST"):
        load_model(tmp, proprio_dim=12)
