from __future__ import annotations

import json
import os

import numpy as np
import pytest

from medseglatdiff.errors import MedsegError
from medseglatdiff.planning.pipeline import plan
from medseglatdiff.planning.plans_io import load_plans, save_plans
from medseglatdiff.preprocessing.case_io import CaseFiles, read_case
from medseglatdiff.preprocessing.preprocess import preprocess


def _planned(raw, work):
    plan(work, dataset=raw.root, memory_gb=4, progress=False)
    return work


def test_lidc_cases_written_with_raters(lidc_raw, tmp_path):
    work = _planned(lidc_raw, tmp_path / "work")
    counts = preprocess(lidc_raw.root, work, progress=False)
    assert counts == {"2d": {"written": 8, "skipped": 0, "removed": 0}}
    case = lidc_raw.case_ids()[0]
    data = np.load(work / "2d" / f"{case}.npz")
    raw_case = read_case(CaseFiles.from_spec(lidc_raw, case))
    assert data["image"].dtype == np.float32 and data["image"].shape == (1, 128, 128)
    assert data["label"].dtype == np.uint8 and data["label"].shape == (1, 128, 128)
    assert data["raters"].shape == (4, 128, 128)
    np.testing.assert_array_equal(data["raters"], raw_case.raters)  # spacing 1 kept: masks unchanged
    props = json.loads((work / "2d" / f"{case}.json").read_text())
    for key in (
        "original_shape",
        "original_geometry",
        "bbox",
        "shape_after_crop",
        "spacing_before",
        "spacing_after",
        "shape_after_resampling",
        "plan_hash",
        "source_signature",
        "configuration",
    ):
        assert key in props
    assert props["configuration"] == "2d" and props["num_raters"] == 4


def test_idempotent_stale_and_clean(lidc_raw, tmp_path):
    work = _planned(lidc_raw, tmp_path / "work")
    assert preprocess(lidc_raw.root, work, progress=False)["2d"]["written"] == 8
    assert preprocess(lidc_raw.root, work, progress=False)["2d"] == {"written": 0, "skipped": 8, "removed": 0}
    # a raw file that changes makes its case stale
    case = lidc_raw.case_ids()[1]
    image_file = lidc_raw.image_files(case)[0]
    stat = image_file.stat()
    os.utime(image_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert preprocess(lidc_raw.root, work, progress=False)["2d"] == {"written": 1, "skipped": 7, "removed": 0}
    # a changed preprocessing block makes every case stale; a changed batch size does not
    plans = load_plans(work)
    plans["configurations"]["2d"]["image_autoencoder"]["batch_size"] = 4
    save_plans(plans, work)
    assert preprocess(lidc_raw.root, work, progress=False)["2d"]["written"] == 0
    plans["configurations"]["2d"]["preprocessing"]["target_spacing"] = [2.0, 2.0]
    save_plans(plans, work)
    assert preprocess(lidc_raw.root, work, progress=False)["2d"]["written"] == 8
    assert np.load(work / "2d" / f"{case}.npz")["image"].shape == (1, 64, 64)
    assert preprocess(lidc_raw.root, work, clean=True, progress=False)["2d"]["written"] == 8


def test_parallel_equals_serial(lidc_raw, tmp_path):
    serial = _planned(lidc_raw, tmp_path / "serial")
    parallel = _planned(lidc_raw, tmp_path / "parallel")
    preprocess(lidc_raw.root, serial, progress=False)
    preprocess(lidc_raw.root, parallel, num_workers=2, progress=False)
    for case in lidc_raw.case_ids():
        a, b = np.load(serial / "2d" / f"{case}.npz"), np.load(parallel / "2d" / f"{case}.npz")
        for key in ("image", "label", "raters"):
            np.testing.assert_array_equal(a[key], b[key])


def test_rgb_resampled_and_scaled(kvasir_raw, tmp_path):
    work = _planned(kvasir_raw, tmp_path / "work")
    preprocess(kvasir_raw.root, work, progress=False)
    config = load_plans(work)["configurations"]["2d"]
    assert [n["scheme"] for n in config["preprocessing"]["normalization"]] == ["unit_range"] * 3
    for case in kvasir_raw.case_ids():
        data = np.load(work / "2d" / f"{case}.npz")
        props = json.loads((work / "2d" / f"{case}.json").read_text())
        # [0, 1] before resampling; bicubic interpolation may overshoot a little
        assert data["image"].shape[0] == 3 and -0.1 <= data["image"].min() and data["image"].max() <= 1.1
        assert 0.2 < data["image"].mean() < 0.8
        assert max(props["shape_after_resampling"]) <= 130  # ~600 px frames brought to the 128 px CPU input size
        assert props["spacing_after"][0] > 4
        assert set(np.unique(data["label"])) == {0, 1}
        assert "raters" not in data.files


def test_unknown_configuration_and_missing_plans(lidc_raw, tmp_path):
    with pytest.raises(MedsegError, match="plans.json: not found"):
        preprocess(lidc_raw.root, tmp_path / "empty", progress=False)
    work = _planned(lidc_raw, tmp_path / "work")
    with pytest.raises(MedsegError, match="configuration\\(s\\) 3d not in plans.json"):
        preprocess(lidc_raw.root, work, configurations=["3d"], progress=False)
    with pytest.raises(MedsegError, match="num_workers"):
        preprocess(lidc_raw.root, work, num_workers=0, progress=False)
