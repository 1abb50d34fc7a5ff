"""A new sim session keeps, but does not resume, the previous run in its output folder."""

from rlt.app.session import keep_previous_run


def test_previous_run_is_moved_aside_and_kept(tmp_path):
    out = tmp_path / "sim_session"
    assert keep_previous_run(out) is None  # nothing there yet
    out.mkdir()
    assert keep_previous_run(out) is None and out.is_dir()  # empty: nothing to keep
    kept = []
    for run in range(2):
        out.mkdir(exist_ok=True)
        (out / "learner").mkdir()
        (out / "learner" / "stats.json").write_text(str(run))
        kept.append(keep_previous_run(out))
        assert not out.exists()
    assert kept[0] != kept[1]  # two runs within the same second get different names
    assert [(k / "learner" / "stats.json").read_text() for k in kept] == ["0", "1"]
