"""Turns the per-control-step stream of one episode into chunk transitions ⟨x_t, a_t:t+C, ã_t, r_t:t+C, x_t+C, ã_t+C⟩.

This module owns the paper's stride subsampling and the episode-boundary rules; it works in physical units and
knows nothing about networks or ROS. Per step t the caller passes the executed action row a_t, the reward r_t that
followed it, the done / timeout / intervened flags, and — at least at every stride step — the state x_t = (z_rl,
proprio) and the reference ã_t observed before acting. A transition starts at every stride-th step (counted from
the episode start, or from `reset` at the hand-off) and is emitted once x_t+C arrives, C steps later.

Episode ends:
* done (success or failure) at step T: every open window (t ≤ T < t + C) is emitted with done=True, the rows after
  T zero-padded (actions: no motion; rewards: 0) and x', ã' copied from the last observed state (the learner never
  bootstraps from them).
* timeout at step T (time limit): open windows are DROPPED. They are not terminal, but x_t+C was never observed,
  so there is nothing to bootstrap from; storing them as terminal would teach the critic that the time limit is
  part of the task.
* a window whose x_t+C is not supplied at step t + C is dropped too.

Interventions: if any executed step of a window was human-driven, the transition gets intervened=True and its
reference ã := the executed chunk (the paper's ã := a_human), so the BC term pulls the actor toward the human.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rlt.types import Transition, as_array


@dataclasses.dataclass(frozen=True)
class _Obs:
    rl_token: np.ndarray  # float32[Z]
    proprio: np.ndarray  # float32[P]
    reference: np.ndarray  # float32[C, D], physical
    stamp_ns: int


@dataclasses.dataclass(frozen=True)
class _Executed:
    action: np.ndarray  # float32[D], physical
    reward: float
    intervened: bool


class TransitionAssembler:
    """Chunk transitions from a control-step stream, one episode at a time (see the module docstring)."""

    def __init__(self, chunk_len: int, action_dim: int, stride: int = 2, *, episode_id: int = 0) -> None:
        if chunk_len < 1 or action_dim < 1 or stride < 1 or chunk_len % stride:
            raise ValueError(f"TransitionAssembler: need chunk_len >= 1, action_dim >= 1 and a stride dividing "
                             f"chunk_len; got chunk_len={chunk_len} action_dim={action_dim} stride={stride}")
        self.chunk_len, self.action_dim, self.stride = chunk_len, action_dim, stride
        self.reset(episode_id)

    def reset(self, episode_id: int) -> None:
        """Start a new episode (or the critical phase of one); open windows of the previous one are dropped."""
        self.episode_id = episode_id
        self.step_index = 0  # the next step to execute, counted from the reset
        self.ended = False
        self._obs: dict[int, _Obs] = {}
        self._executed: dict[int, _Executed] = {}
        self._open: list[int] = []  # start steps of windows waiting for their next state

    def step(
        self,
        action: np.ndarray,
        reward: float,
        *,
        rl_token: np.ndarray | None = None,
        proprio: np.ndarray | None = None,
        reference: np.ndarray | None = None,
        done: bool = False,
        timeout: bool = False,
        intervened: bool = False,
        stamp_ns: int = 0,
    ) -> list[Transition]:
        """Record step t: state before acting (optional except at stride steps), the executed action, the outcome.

        action: float32[D] executed (actor, reference or human); reference: float32[H, D] with H >= C (the first C
        rows are kept). Returns the transitions completed by this step, oldest first.
        """
        if self.ended:
            raise RuntimeError(f"TransitionAssembler: episode {self.episode_id} ended; call reset() first")
        t = self.step_index
        out: list[Transition] = []
        given = [v is not None for v in (rl_token, proprio, reference)]
        if any(given) and not all(given):
            raise ValueError("TransitionAssembler.step: pass rl_token, proprio and reference together (or none)")
        if all(given):
            self._obs[t] = self._observe(rl_token, proprio, reference, stamp_ns)
        completing = [s for s in self._open if s + self.chunk_len == t]
        self._open = [s for s in self._open if s + self.chunk_len != t]
        if t in self._obs:
            out += [self._transition(s, t, self._obs[t], done=False) for s in completing]
            if t % self.stride == 0:
                self._open.append(t)
        action = as_array("TransitionAssembler.action", action, 1, (self.action_dim,))
        self._executed[t] = _Executed(action, float(reward), bool(intervened))
        self.step_index = t + 1
        if done:
            last = self._obs[max(self._obs)] if self._obs else None
            out += [self._transition(s, t + 1, last, done=True) for s in self._open if last is not None]
        if done or timeout:
            self.ended = True
            self._open = []
        self._prune()
        return out

    def _observe(self, rl_token: object, proprio: object, reference: object, stamp_ns: int) -> _Obs:
        ref = as_array("TransitionAssembler.reference", reference, 2, (None, self.action_dim))
        if ref.shape[0] < self.chunk_len:
            raise ValueError(f"TransitionAssembler.reference: expected at least {self.chunk_len} rows (chunk_len), "
                             f"got {ref.shape[0]}")
        return _Obs(
            as_array("TransitionAssembler.rl_token", rl_token, 1),
            as_array("TransitionAssembler.proprio", proprio, 1),
            ref[: self.chunk_len].copy(),
            stamp_ns,
        )

    def _transition(self, start: int, stop: int, nxt: _Obs, *, done: bool) -> Transition:
        """Window [start, stop) of executed steps (stop - start = C unless done); rows after stop zero-padded."""
        c = self.chunk_len
        steps = [self._executed[s] for s in range(start, stop)]
        action = np.zeros((c, self.action_dim), np.float32)
        action[: len(steps)] = [e.action for e in steps]
        rewards = np.zeros(c, np.float32)
        rewards[: len(steps)] = [e.reward for e in steps]
        intervened = any(e.intervened for e in steps)
        x = self._obs[start]
        return Transition(
            rl_token=x.rl_token,
            proprio=x.proprio,
            action=action,
            reference=action.copy() if intervened else x.reference,
            rewards=rewards,
            done=done,
            intervened=intervened,
            next_rl_token=nxt.rl_token,
            next_proprio=nxt.proprio,
            next_reference=nxt.reference,
            episode_id=self.episode_id,
            step=start,
            stamp_ns=x.stamp_ns,
        )

    def _prune(self) -> None:
        """Forget steps no open window needs (keep the latest state: it may become a terminal x')."""
        keep_from = min(self._open, default=self.step_index)
        latest = max(self._obs, default=None)
        self._obs = {s: o for s, o in self._obs.items() if s >= keep_from or s == latest}
        self._executed = {s: e for s, e in self._executed.items() if s >= keep_from}
