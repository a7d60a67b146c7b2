"""End to end through the CLI functions: verify -> fingerprint -> plan -> preprocess, and each stage alone."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medseglatdiff import cli
from medseglatdiff.planning.plans_io import load_plans


def test_plan_and_preprocess_then_rerun_skips(lidc_raw, tmp_path, capsys):
    work = tmp_path / "work"
    cli.plan_and_preprocess(str(lidc_raw.root), str(work), memory_gb=4)
    out = capsys.readouterr().out
    assert "2d: 8 cases written, 0 up to date" in out
    for name in ("dataset_fingerprint.json", "plans.json"):
        assert (work / name).is_file()
    assert len(list((work / "2d").glob("*.npz"))) == 8 and len(list((work / "2d").glob("*.json"))) == 8
    plans = load_plans(work)
    assert plans["configurations"]["2d"]["mask_targets"] == "random_rater"
    cli.plan_and_preprocess(str(lidc_raw.root), str(work), memory_gb=4)
    out = capsys.readouterr().out
    assert "(up to date)" in out and "2d: 0 cases written, 8 up to date" in out
    cli.plan_and_preprocess(str(lidc_raw.root), str(work), memory_gb=4, clean=True)
    out = capsys.readouterr().out
    assert "(up to date)" not in out and "2d: 8 cases written" in out


def test_stages_alone_through_main(brats_raw, tmp_path, capsys):
    work = tmp_path / "work"
    cli.main(["extract_fingerprint", "--dataset", str(brats_raw.root), "--out", str(work)])
    assert "fingerprinted 2 3D cases" in capsys.readouterr().out
    cli.main(["plan", "--out", str(work), "--memory_gb", "4", "--configurations", "3d", "2d"])
    out = capsys.readouterr().out
    assert out.startswith("3d: patch [") and "2d: patch [" in out
    cli.main(["preprocess", "--dataset", str(brats_raw.root), "--out", str(work), "--configurations", "3d"])
    assert "3d: 2 cases written" in capsys.readouterr().out
    assert not (work / "2d").exists()
    case = brats_raw.case_ids()[0]
    data = np.load(work / "3d" / f"{case}.npz")
    props = json.loads((work / "3d" / f"{case}.json").read_text())
    assert data["image"].shape[0] == 2 and data["label"].shape[1:] == data["image"].shape[1:]
    assert props["configuration"] == "3d" and len(props["original_shape"]) == 3


def test_invalid_dataset_is_refused_with_every_problem(lidc_raw, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(lidc_raw.root, broken)
    victim = sorted((broken / "labelsTr").iterdir())[0]
    victim.unlink()
    with pytest.raises(SystemExit) as info:
        cli.plan_and_preprocess(str(broken), str(tmp_path / "work"))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and victim.stem in err
    assert not (tmp_path / "work" / "plans.json").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["plan", "--out", "{work}"], "dataset_fingerprint.json: not found"),
        (["preprocess", "--dataset", "{raw}", "--out", "{work}"], "plans.json: not found"),
        (
            ["plan_and_preprocess", "--dataset", "{raw}", "--out", "{work}", "--configurations", "4d"],
            "unknown configuration(s) 4d",
        ),
    ],
)
def test_user_errors_exit_2(lidc_raw, tmp_path, capsys, argv, message):
    argv = [a.format(work=tmp_path / "work", raw=lidc_raw.root) for a in argv]
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2 and message in capsys.readouterr().err
