"""The facelab CLI entry point (mirrors lab/cli.py)."""

from __future__ import annotations

import pytest

from lab.cli import main


def test_models_lists_static(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "static" in out and "encoder params" in out


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "models" in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert main([]) == 1
