"""The actor node's logic without ROS: VLA outputs in, executed chunks and replay transitions out.

Per `VlaOutput` (one per driver request, in order):
- approach phase: the base VLA drives — its reference chunk passes through (source VLA), nothing is stored;
- critical phase: the chunk is the RL actor's (exploring in "train" mode, the mean in "eval"), the reference
  during the warmup episodes or in "base" mode, or the human's chunk while an intervention is active (in either
  phase: from the latest `human/action_chunk` until the operator's INTERVENE_END or `human_timeout_s` of silence);
- the rows the driver reports as executed, with their rewards and sources, feed a `TransitionAssembler`
  (stride subsampling, terminal rules, ã := a_human on interventions), whose transitions go to the learner.
Weight snapshots are parked by `ChunkPolicy` and applied at the next chunk, never mid-chunk.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rlt.config import Config
from rlt.rl.assembly import TransitionAssembler
from rlt.rl.config import RLConfig
from rlt.rl.policy import ChunkPolicy
from rlt.types import ActionChunk, Phase, PolicyWeights, Source, Terminal, Transition, VlaOutput

ACTOR_MODES = ("train", "eval", "base")


@dataclasses.dataclass(frozen=True)
class ActorConfig(Config):
    """How the actor acts in the critical phase."""

    mode: str = "train"  # train: explore + store transitions; eval: actor mean, nothing stored; base: reference only
    # lockstep sim: hold each chunk until the learner's updates reach utd x transitions sent, minus this slack, so
    # the UTD ratio holds however fast the sim runs (0 = never wait, as on a robot that cannot pause)
    learner_slack_updates: int = 0

    def validate(self) -> None:
        self.require_choice("mode", ACTOR_MODES)
        if self.learner_slack_updates < 0:
            self.fail("learner_slack_updates", "must be >= 0 (0 = do not wait for the learner)")


@dataclasses.dataclass
class ActorStep:
    """What to publish after one VLA output."""

    chunk: ActionChunk | None  # the chunk to execute when the driver asked for one
    transitions: list[Transition]
    weights_version: int  # actor weights in use (-1: none yet)


class ActorCore:
    """See the module docstring."""

    def __init__(self, rl: RLConfig, cfg: ActorConfig) -> None:
        self.rl, self.cfg = rl, cfg
        self.policy = ChunkPolicy(rl)
        self.assembler = TransitionAssembler(rl.chunk_len, rl.action_dim, rl.stride)
        self.critical_episodes = 0  # episodes that reached the critical phase
        self._episode = -1
        self._in_critical = False
        self._state: tuple[np.ndarray, np.ndarray, np.ndarray, int] | None = None  # x_t, ã_t before the next rows
        self._human: ActionChunk | None = None
        self._axis_names: tuple[str, ...] = ()  # the driver's action axes (from its requests), for human chunks
        self._human_received_ns = 0
        self._human_released_ns = -1
        self._next_chunk_id = 0
        self._last: tuple[tuple[int, int, int], ActionChunk | None] = ((-1, -1, -1), None)  # (episode, step, stamp)
        self.sent = 0  # transitions handed out for the learner
        self.learner_step = 0  # learner updates at its latest snapshot

    def load_weights(self, weights: PolicyWeights) -> bool:
        """Park a snapshot for the next chunk; False (ignored) if not newer than the weights held (see ChunkPolicy)."""
        if not self.policy.load_weights(weights.version, weights.tensors, weights.architecture):
            return False
        self.learner_step = max(self.learner_step, weights.learner_step)
        return True

    @property
    def learner_behind(self) -> bool:
        """True while the next chunk should wait for the learner (see ActorConfig.learner_slack_updates)."""
        if self.cfg.mode != "train" or not self.cfg.learner_slack_updates or self.sent < self.rl.learning_starts:
            return False
        return self.rl.utd * self.sent - self.learner_step > self.cfg.learner_slack_updates

    def set_human_chunk(self, chunk: ActionChunk | None, received_ns: int = 0) -> None:
        """The human's current chunk (None: no intervention); it replaces the actor's at the next boundary.

        A chunk stamped at or before the last `end_intervention` is ignored: it was sent before the release and
        arrived after it (chunks and operator events travel on different topics).
        """
        if chunk is not None and chunk.stamp_ns <= self._human_released_ns:
            return
        if chunk is not None:
            self._check_human(chunk)
        self._human, self._human_received_ns = chunk, received_ns

    def _check_human(self, chunk: ActionChunk) -> None:
        """ValueError (nothing changed) for a human chunk this actor could not execute in place of its own."""
        c, d = self.rl.chunk_len, self.rl.action_dim
        if chunk.data.shape[0] < c or chunk.data.shape[1] != d:
            raise ValueError(f"human ActionChunk of shape {chunk.data.shape}: this actor executes chunks of {c} rows "
                             f"x {d} axes (rl.chunk_len, rl.action_dim)")
        if self._axis_names and chunk.axis_names != self._axis_names:
            raise ValueError(f"human ActionChunk.axis_names={chunk.axis_names}, the driver acts on {self._axis_names}")

    def end_intervention(self, stamp_ns: int) -> None:
        """The operator released the dead-man at `stamp_ns` (INTERVENE_END): the actor drives from the next chunk."""
        self._human = None
        self._human_released_ns = max(self._human_released_ns, stamp_ns)

    def expire_human(self, now_ns: int, timeout_ns: int) -> bool:
        """Drop the human chunk when none arrived for `timeout_ns` (the joystick went silent); True if dropped."""
        if self._human is None or now_ns - self._human_received_ns <= timeout_ns:
            return False
        self._human = None
        return True

    @property
    def human_active(self) -> bool:
        return self._human is not None

    @property
    def warming_up(self) -> bool:
        return self.critical_episodes <= self.rl.warmup_episodes

    def _check_sizes(self, out: VlaOutput) -> None:
        want = {"rl_token": (self.rl.token_dim,), "proprio": (self.rl.proprio_dim,)}
        for name, shape in want.items():
            if getattr(out, name).shape != shape:
                raise ValueError(f"VlaOutput from model {out.model_id!r}: {name} has shape "
                                 f"{getattr(out, name).shape}, this actor expects {shape} (rl.token_dim / "
                                 "rl.proprio_dim): another VLA on this ROS domain, or the wrong model?")

    def on_vla_output(self, out: VlaOutput) -> ActorStep:
        """Record and act on one VLA answer; ValueError (nothing changed) if its sizes are not this actor's."""
        self._check_sizes(out)
        req = out.request
        self._axis_names = req.axis_names
        key = (req.episode_id, req.step, req.stamp_ns)  # a robot may ask again at the same step with a new stamp
        if key == self._last[0]:  # a re-sent answer (the driver timed out waiting): repeat, record nothing twice
            return ActorStep(self._last[1], [], self.policy.version)
        transitions: list[Transition] = []
        if req.episode_id != self._episode:
            self._episode, self._in_critical, self._state = req.episode_id, False, None
        if req.phase is Phase.CRITICAL:
            if not self._in_critical:  # hand-off: transitions start here; earlier rows belonged to the approach
                self._in_critical = True
                self.critical_episodes += 1
                self.assembler.reset(req.episode_id)
            elif self.cfg.mode == "train":
                transitions = self._record(out)
            self._state = (out.rl_token, out.proprio, out.reference.data, out.stamp_ns)
        chunk = self._choose(out) if req.need_chunk and req.terminal is Terminal.NONE else None
        self._last = (key, chunk)
        self.sent += len(transitions)
        return ActorStep(chunk, transitions, self.policy.version)

    def _record(self, out: VlaOutput) -> list[Transition]:
        req, transitions = out.request, []
        n = len(req.sources)
        for i in range(n):
            state = self._state if i == 0 else None
            last = i == n - 1
            kwargs = {}
            if state is not None:
                kwargs = dict(rl_token=state[0], proprio=state[1], reference=state[2], stamp_ns=state[3])
            if self.assembler.ended:
                break
            transitions += self.assembler.step(
                req.executed[i],
                float(req.rewards[i]),
                done=last and req.terminal in (Terminal.SUCCESS, Terminal.FAILURE),
                timeout=last and req.terminal is Terminal.TIMEOUT,
                intervened=req.sources[i] is Source.HUMAN,
                **kwargs,
            )
        return transitions

    def _choose(self, out: VlaOutput) -> ActionChunk:
        req, c = out.request, self.rl.chunk_len
        version = -1
        if self._human is not None:
            data, source = self._human.data[:c], Source.HUMAN
        elif req.phase is Phase.APPROACH or self.cfg.mode == "base":
            data, source = out.reference.data[:c], Source.VLA
        else:
            picked = self.policy.act(
                out.rl_token,
                out.proprio,
                out.reference.data,
                explore=self.cfg.mode == "train",
                warmup=self.cfg.mode == "train" and self.warming_up,
            )
            data, source = picked.data, picked.source
            version = picked.version if source is Source.ACTOR else -1
        self._next_chunk_id += 1
        return ActionChunk(data, req.axis_names, source, self._next_chunk_id, req.stamp_ns, policy_version=version)
