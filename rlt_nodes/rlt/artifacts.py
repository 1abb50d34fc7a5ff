"""Artifact keys: what made a cached artifact (demos, VLA, rollouts, RL token, ONNX), so none is reused silently.

A key is a JSON object: the configs that produced the artifact (as plain dicts) and the digests of the artifacts it
was built from. `rlt session` writes it beside each artifact (`KEY_FILE`) when it starts building that artifact,
and before reusing one compares the recorded key with the one its current configs give: any difference rebuilds
the artifact and everything built from it, and the message names the fields that differ. Pure Python.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

KEY_FILE = "artifact_key.json"


def make_key(configs: Mapping[str, Any], inputs: Mapping[str, dict] | None = None) -> dict[str, Any]:
    """{"configs": configs, "inputs": {name: digest of that input's key}} (JSON-normalized)."""
    key = {"configs": dict(configs), "inputs": {name: digest(k) for name, k in (inputs or {}).items()}}
    return json.loads(json.dumps(key, sort_keys=True))  # tuples -> lists, as read back from the file


def digest(key: Mapping[str, Any]) -> str:
    """sha256 of a key's canonical JSON: how keys built from this artifact refer to it."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def key_path(artifact: Path) -> Path:
    """Where the key of `artifact` (a folder, or a file such as an ONNX model) is kept."""
    return artifact / KEY_FILE if artifact.is_dir() or not artifact.suffix else artifact.with_name(
        f"{artifact.name}.{KEY_FILE}")


def write_key(artifact: Path, key: Mapping[str, Any]) -> None:
    path = key_path(artifact)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(key, indent=1, sort_keys=True))


def read_key(artifact: Path) -> dict[str, Any] | None:
    path = key_path(artifact)
    return json.loads(path.read_text()) if path.is_file() else None


def differences(recorded: Any, expected: Any, prefix: str = "") -> list[str]:
    """'field: recorded -> expected' for each leaf that differs (dotted paths), at most the first 5."""
    if isinstance(recorded, Mapping) and isinstance(expected, Mapping):
        out: list[str] = []
        for name in sorted(set(recorded) | set(expected)):
            path = f"{prefix}.{name}" if prefix else str(name)
            if name not in recorded:
                out.append(f"{path}: (absent) -> {expected[name]!r}")
            elif name not in expected:
                out.append(f"{path}: {recorded[name]!r} -> (absent)")
            else:
                out += differences(recorded[name], expected[name], path)
        return out[:5]
    return [] if recorded == expected else [f"{prefix}: {recorded!r} -> {expected!r}"]


def stale_reason(artifact: Path, key: Mapping[str, Any]) -> str | None:
    """None when `artifact` exists and was made by `key`; otherwise why it must be (re)built."""
    if not artifact.exists():
        return "not built yet"
    recorded = read_key(artifact)
    if recorded is None:
        return f"no {KEY_FILE}: built before artifact keys, by unknown settings"
    diff = differences(recorded, dict(key))
    return "built with other settings: " + "; ".join(diff) if diff else None
