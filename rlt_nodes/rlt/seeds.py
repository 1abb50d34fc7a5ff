"""The environment-seed ranges of the project, each defined once: demonstrations, training, tuning, evaluation.

A sim episode is a pure function of its env seed (socket pose, start pose, in-hand offset), so where a seed is
used decides what a figure means. Settings are chosen on TUNING (`rlt bench session`, every sweep and
diagnostic); the README's headline and `rlt session`'s report are measured on EVALUATION, which no sweep
touches; the policies learn from DEMOS (recorded datasets) and TRAINING (online RL episodes). The ranges are
disjoint (tests/core/test_seeds.py), and every report names the range it used. Pure Python.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class SeedRange:
    """Env seeds first, first + 1, ..., first + size - 1."""

    name: str
    first: int
    size: int
    purpose: str

    def seed(self, k: int) -> int:
        """The k-th seed of the range; `ValueError` past its end (it would run into another range)."""
        if not 0 <= k < self.size:
            raise ValueError(f"seed index {k} is outside the {self.name} range of {self.size} seeds")
        return self.first + k

    def check(self, first: int, count: int) -> None:
        """`ValueError` unless seeds first .. first + count - 1 all lie in this range."""
        if not (self.first <= first and first + count <= self.first + self.size):
            raise ValueError(f"seeds {first}..{first + count - 1} are not all in the {self.describe()}")

    def __contains__(self, seed: int) -> bool:
        return self.first <= seed < self.first + self.size

    def describe(self) -> str:
        """'evaluation range [7000000, 8000000)': how reports name it."""
        return f"{self.name} range [{self.first}, {self.first + self.size})"


DEMOS = SeedRange("demos", 2**32, 2**30, "recorded datasets: demos and base-VLA rollouts (rlt.sim.demos.demo_seed)")
TRAINING = SeedRange("training", 100_000, 900_000, "online RL episodes")
TUNING = SeedRange("tuning", 1_000_000, 1_000_000, "choosing settings: rlt bench session, sweeps, diagnostics")
EVALUATION = SeedRange("evaluation", 7_000_000, 1_000_000, "rlt session's report and the README's headline only")
RANGES: dict[str, SeedRange] = {r.name: r for r in (DEMOS, TRAINING, TUNING, EVALUATION)}
