"""`rlt report readme`: put a session's headline table into the README (and its summary into docs/)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("summary", nargs="?", default="runs/sim_session/report/summary.json",
                        help="summary.json of an rlt session run (default: the main job's)")
    parser.add_argument("--readme", default="README.md", help="the README to update (default: README.md)")
    parser.add_argument("--keep", default="docs/headline_summary.json",
                        help="where the summary is kept beside the README, so tests can regenerate the table")


def run(args: argparse.Namespace) -> int:
    import json
    import shutil
    from pathlib import Path

    from rlt.app.report import update_readme

    summary = json.loads(Path(args.summary).read_text())
    readme = Path(args.readme)
    text = update_readme(readme, summary)  # raises before anything is written
    shutil.copyfile(args.summary, args.keep)
    readme.write_text(text)
    print(f"[report] {readme}: headline from {args.summary} (kept as {args.keep})")
    return 0
