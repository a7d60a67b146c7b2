"""Every ``medseg`` command answers ``--help`` with its help and exit status 0."""

from __future__ import annotations

import pytest

from medseglatdiff.cli import commands, help_as_fire_flag, main


@pytest.mark.parametrize("name", ["", *commands()])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_exits_0(name: str, flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [name, flag] if name else [flag]
    try:
        main(argv)
    except SystemExit as exc:
        assert exc.code in (0, None), f"medseg {name} {flag} exited {exc.code}"
    captured = capsys.readouterr()
    shown = captured.out + captured.err  # fire shows a group's help on stderr, a command's on stdout
    assert "SYNOPSIS" in shown and f"medseg {name}".strip() in shown


def test_help_flag_goes_to_fire_whatever_else_is_given() -> None:
    assert help_as_fire_flag(["train", "work", "--help", "--fold", "1"]) == ["train", "--", "--help"]
    assert help_as_fire_flag(["train", "work", "--fold", "1"]) == ["train", "work", "--fold", "1"]
    assert help_as_fire_flag(["train", "--", "--help"]) == ["train", "--", "--help"]
