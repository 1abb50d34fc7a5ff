"""What a node reports about its own timing and health, free of ROS: latency windows, counters and gauges.

This module owns `Health`: each node records the latency of its stage of the chunk pipeline (measured from the
observation's stamp, the `ChunkRequest` stamp every later message carries, on the shared clock of one machine),
counts what went wrong (watchdog holds, missed chunk deadlines, refused inputs) and sets gauges (weights version
and age, learner updates/s, replay size). `snapshot()` gives the flat key -> text pairs a node publishes once a
second as a `diagnostic_msgs/DiagnosticStatus` (`rlt_nodes.diagnostics`), with p50 / p99 over the last
`window` samples of each stage.
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np

from rlt.config import Config

WINDOW = 1000  # samples per latency window: 50 s of chunks at 20 Hz, enough for a stable p99


@dataclasses.dataclass(frozen=True)
class DiagnosticsConfig(Config):
    """How a node keeps its health report (every node's `diagnostics.*` parameters)."""

    window: int = WINDOW  # latency samples per stage behind each p50 / p99
    # folder where the node also writes its newest report, <node name>.json, once a second: for benchmarks and
    # post-mortems of a session (/diagnostics is only seen while it runs); "" = none
    dump_dir: str = ""

    def validate(self) -> None:
        self.require_positive("window")


@dataclasses.dataclass
class Health:
    """One node's latencies (s), counters and gauges; `warning` names what is wrong now ("" = OK)."""

    window: int = WINDOW
    latencies: dict[str, collections.deque] = dataclasses.field(default_factory=dict)
    counters: dict[str, int] = dataclasses.field(default_factory=dict)
    gauges: dict[str, float | int | str] = dataclasses.field(default_factory=dict)
    warning: str = ""

    def latency(self, stage: str, seconds: float) -> None:
        """One sample of `stage` (s from the observation's stamp to this stage)."""
        self.latencies.setdefault(stage, collections.deque(maxlen=self.window)).append(float(seconds))

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def set(self, name: str, value: float | int | str) -> None:
        self.gauges[name] = value

    def percentiles(self, stage: str) -> tuple[float, float, int]:
        """(p50, p99) in s and the number of samples of `stage`'s window; NaN when it is empty."""
        values = np.asarray(self.latencies.get(stage, ()), np.float64)  # float64[N]
        if not values.size:
            return float("nan"), float("nan"), 0
        p50, p99 = np.percentile(values, [50, 99])
        return float(p50), float(p99), int(values.size)

    def snapshot(self) -> dict[str, str]:
        """Flat key -> text: `<stage>_p50_ms`, `<stage>_p99_ms`, `<stage>_max_ms`, `<stage>_n`, then counters and
        gauges."""
        out: dict[str, str] = {}
        for stage, values in self.latencies.items():
            p50, p99, n = self.percentiles(stage)
            out |= {f"{stage}_p50_ms": f"{p50 * 1e3:.1f}", f"{stage}_p99_ms": f"{p99 * 1e3:.1f}",
                    f"{stage}_max_ms": f"{max(values, default=float('nan')) * 1e3:.1f}", f"{stage}_n": str(n)}
        out |= {name: str(value) for name, value in self.counters.items()}
        out |= {name: f"{value:.4g}" if isinstance(value, float) else str(value) for name, value in self.gauges.items()}
        return out


def parse_snapshot(values: dict[str, str]) -> dict[str, float]:
    """The numbers of a published snapshot (what `rlt bench realtime` reads back); text gauges are left out."""
    out = {}
    for key, text in values.items():
        try:
            out[key] = float(text)
        except ValueError:
            continue
    return out
