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


def test_system_errors_are_one_line_and_exit_2(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "out").write_text("a file where the raw dataset folder should go")
    with pytest.raises(SystemExit) as raised:
        main(["demo_data", "--out", str(tmp_path / "out" / "raw")])
    err = capsys.readouterr().err
    assert raised.value.code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_train_refuses_dataset_for_the_work_folder(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["train", str(tmp_path), "--dataset", str(tmp_path)])
    assert raised.value.code == 2 and "takes the work folder as its first argument" in capsys.readouterr().err
