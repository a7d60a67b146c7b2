"""The bundle card's command, verbatim from the repository root: trains, or says in one line what to run first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from medseglatdiff.bundle_command import run
from medseglatdiff.errors import BundleCommandError, MedsegError, user_error

REPO_ROOT = Path(__file__).resolve().parents[2]


def _monai_bundle_run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "run_id, config", [("training", "train.json"), ("inference", "inference.json"), ("evaluate", "evaluate.json")]
)
def test_card_command_without_a_work_folder_prints_one_line(run_id: str, config: str, tmp_path: Path) -> None:
    bundle = REPO_ROOT / "bundles" / "isic" / config
    result = _monai_bundle_run(run_id, "--config_file", str(bundle), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "work/Dataset010_ISIC: not a planned dataset" in errors[0]
    assert "medseg plan_and_preprocess --dataset raw/Dataset010_ISIC --out work/Dataset010_ISIC" in errors[0]


def test_a_user_error_inside_a_run_leaves_as_one_message(tmp_path: Path) -> None:
    (tmp_path / "plans.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(BundleCommandError) as raised:
        run("training", {"bundle_name": "lidc", "configuration": "2d"}, dataset_dir=tmp_path)
    assert raised.value.code.startswith("error: ") and "\n" not in raised.value.code.split("error: ", 1)[1][:1]
    assert isinstance(user_error(raised.value), MedsegError)


def test_unknown_run_id_is_refused() -> None:
    with pytest.raises(BundleCommandError, match="unknown run id"):
        run("deploy", {})


def test_missing_work_folder_names_the_preparing_commands(tmp_path: Path) -> None:
    with pytest.raises(BundleCommandError) as raised:
        run("training", {}, dataset_dir=tmp_path / "work", prepare=["medseg convert a", "medseg plan_and_preprocess b"])
    message = str(raised.value.code)
    assert "not a planned dataset" in message and "`medseg convert a`; then `medseg plan_and_preprocess b`" in message


def test_a_renamed_setting_is_refused_with_its_new_name() -> None:
    from medseglatdiff.training.bundle import build_parser

    with pytest.raises(MedsegError, match="denoiser#val_ensemble_size is now denoiser#val_num_samples"):
        build_parser(settings={"denoiser": {"val_ensemble_size": 2}})
    with pytest.raises(BundleCommandError, match="ensemble_size is now num_samples"):
        run("inference", {"ensemble_size": 4}, dataset_dir="", model_dir="somewhere", input_dir="in", output_dir="out")
