"""`rlt --help` lists every registered subcommand; each subcommand has its own help."""

import pytest

from rlt import cli


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for path in cli.COMMANDS:
        assert path[0] in out


@pytest.mark.parametrize("path", list(cli.COMMANDS))
def test_each_subcommand_has_help(path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([*path, "--help"])
    assert exc.value.code == 0
    assert cli.COMMANDS[path][1] in " ".join(capsys.readouterr().out.split())
