from __future__ import annotations

import json

import numpy as np
import pytest

from medseglatdiff.errors import MedsegError
from medseglatdiff.planning.fingerprint import FINGERPRINT_FILE, extract_fingerprint
from medseglatdiff.planning.label_stats import rater_stats
from medseglatdiff.preprocessing.case_io import CaseFiles, read_case


@pytest.fixture(scope="module")
def lidc_fingerprint(lidc_raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("fp")
    return extract_fingerprint(lidc_raw.root, out, progress=False), out


def test_lidc_fingerprint_contents(lidc_raw, lidc_fingerprint):
    fp, out = lidc_fingerprint
    assert json.loads((out / FINGERPRINT_FILE).read_text()) == fp
    summary = fp["summary"]
    assert fp["dataset"]["natural_images"] and fp["dataset"]["num_raters"] == 4
    assert summary["num_cases"] == 8 and summary["spatial_dims"] == 2 and summary["median_shape"] == [128.0, 128.0]
    stats = summary["foreground_intensity"][0]
    assert stats["percentile_00_5"] <= stats["median"] <= stats["percentile_99_5"]
    assert 0 < stats["num_samples"] <= 8 * 10_000
    nodule = summary["classes"]["1"]
    assert nodule["name"] == "nodule" and 0 < nodule["fraction_median_nonzero"] < 0.1
    assert 1 < summary["objects"]["diameter_vox"]["p5"] <= summary["objects"]["diameter_vox"]["p50"] < 64
    assert summary["objects"]["diameter_mm"] == summary["objects"]["diameter_vox"]  # unit spacing


def test_rater_statistics_match_a_direct_computation(lidc_raw, lidc_fingerprint):
    fp, _ = lidc_fingerprint
    direct = [rater_stats(read_case(CaseFiles.from_spec(lidc_raw, c)).raters) for c in lidc_raw.case_ids()]
    raters = fp["summary"]["raters"]
    assert raters["num_raters"] == 4
    assert raters["empty_share"] == pytest.approx(sum(d["num_empty"] for d in direct) / (4 * len(direct)))
    assert raters["mean_pairwise_dice"] == pytest.approx(np.mean([d["mean_pairwise_dice"] for d in direct]))
    case = lidc_raw.case_ids()[0]
    assert fp["cases"][case]["raters"] == direct[0]


def test_deterministic_and_parallel(lidc_raw, lidc_fingerprint):
    fp, _ = lidc_fingerprint
    again = extract_fingerprint(lidc_raw, None, num_workers=2, progress=False)
    assert again == fp


def test_brats_fingerprint_3d(brats_raw):
    fp = extract_fingerprint(brats_raw, progress=False)
    summary = fp["summary"]
    assert summary["spatial_dims"] == 3 and summary["num_channels"] == 2 and not fp["dataset"]["natural_images"]
    assert summary["median_spacing"] == pytest.approx([1.0, 1.0, 1.0])
    assert set(summary["classes"]) == {"1", "2", "3", "4"}
    for entry in fp["cases"].values():
        assert len(entry["foreground_intensity"]) == 2 and entry["raters"] is None
        edema = entry["components"]["2"]
        assert sum(edema["sizes_vox"]) == pytest.approx(
            entry["class_fractions"]["2"] * np.prod(entry["shape_after_crop"])
        )
    assert summary["classes"]["3"]["num_components"] >= summary["classes"]["3"]["num_objects"]


def test_kvasir_fingerprint_rgb(kvasir_raw):
    fp = extract_fingerprint(kvasir_raw, progress=False)
    summary = fp["summary"]
    assert summary["num_channels"] == 3 and fp["dataset"]["channel_names"] == {"0": "R", "1": "G", "2": "B"}
    assert all(0 <= lo and hi <= 255 for lo, hi in summary["intensity_range"])
    assert summary["objects"]["diameter_vox"]["p5"] > 50  # large polyps on ~600 px frames


def test_empty_dataset_is_reported(tmp_path):
    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "dataset.json").write_text(
        json.dumps(
            {"channel_names": {"0": "CT"}, "labels": {"background": 0, "x": 1}, "numTraining": 0, "file_ending": ".png"}
        )
    )
    with pytest.raises(MedsegError, match="no cases found"):
        extract_fingerprint(tmp_path, progress=False)
