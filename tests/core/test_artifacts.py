"""Artifact keys: a cached artifact is reused only when the configs and inputs that made it are unchanged."""

from rlt.artifacts import differences, digest, make_key, read_key, stale_reason, write_key


def test_a_key_round_trips_and_a_change_names_the_field(tmp_path):
    art = tmp_path / "vla"
    demos = make_key({"scale": 1.0})
    key = make_key({"vla": {"lr": 0.001, "widths": (64, 128)}}, {"demos": demos})
    assert stale_reason(art, key) == "not built yet"
    art.mkdir()
    (art / "vla.pt").write_bytes(b"x")
    assert "no artifact_key.json" in stale_reason(art, key)  # built before keys: unknown settings, never reused
    write_key(art, key)
    assert read_key(art) == key and stale_reason(art, key) is None
    changed = make_key({"vla": {"lr": 0.002, "widths": (64, 128)}}, {"demos": demos})
    assert stale_reason(art, changed) == "built with other settings: configs.vla.lr: 0.001 -> 0.002"
    rebuilt_input = make_key({"vla": {"lr": 0.001, "widths": (64, 128)}}, {"demos": make_key({"scale": 0.5})})
    assert stale_reason(art, rebuilt_input).startswith("built with other settings: inputs.demos: ")


def test_a_file_artifact_keeps_its_key_beside_it(tmp_path):
    onnx = tmp_path / "vla.onnx"
    onnx.write_bytes(b"x")
    key = make_key({}, {"token": make_key({"goal_weight": 1.0})})
    write_key(onnx, key)
    assert (tmp_path / "vla.onnx.artifact_key.json").is_file() and stale_reason(onnx, key) is None
    assert digest(key) != digest(make_key({}, {"token": make_key({"goal_weight": 0.0})}))


def test_differences_lists_added_and_removed_fields():
    assert differences({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"d": 2}}) == ["b.c: 2 -> (absent)",
                                                                          "b.d: (absent) -> 2"]
