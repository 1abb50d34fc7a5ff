"""Episode outcome logs: one JSON object per line, appended and flushed as episodes end (crash-safe)."""

from __future__ import annotations

import json
import os
from pathlib import Path


class EpisodeLog:
    """Append-only JSON-lines file of episode summaries (see rlt.sim.driver.SimDriver)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, summary: dict[str, object]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(summary, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())


def read_episode_log(path: str | os.PathLike[str]) -> list[dict]:
    """All complete lines of an episode log (a torn last line from a crash is skipped)."""
    episodes = []
    with open(path) as f:
        for line in f:
            try:
                episodes.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return episodes
