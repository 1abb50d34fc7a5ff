"""The README's headline table is generated from a session summary kept in docs/, not typed by hand."""

import json
from pathlib import Path

import pytest

from rlt.app.report import README_BEGIN, readme_block, update_readme

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_headline_is_the_kept_summarys_table():
    summary = json.loads((ROOT / "docs" / "headline_summary.json").read_text())
    text = (ROOT / "README.md").read_text()
    assert readme_block(summary) in text, "README headline differs from docs/headline_summary.json: rlt report readme"
    assert summary["evaluation_seeds"].startswith("evaluation range")  # never a tuning figure


def test_update_readme_replaces_only_the_block(tmp_path):
    summary = json.loads((ROOT / "docs" / "headline_summary.json").read_text())
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{readme_block(summary).replace('|', '#')}\noutro\n")
    assert update_readme(readme, summary) == f"intro\n{readme_block(summary)}\noutro\n"
    readme.write_text("no block\n")
    with pytest.raises(ValueError, match="one headline block"):
        update_readme(readme, summary)
    assert README_BEGIN not in readme.read_text()
