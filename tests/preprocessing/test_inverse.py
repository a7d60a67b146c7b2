from __future__ import annotations

import json

import numpy as np
import pytest

from medseglatdiff.errors import MedsegError
from medseglatdiff.io.geometry import Geometry
from medseglatdiff.planning.pipeline import plan
from medseglatdiff.preprocessing.case_io import CaseFiles, RawCase, read_case
from medseglatdiff.preprocessing.inverse import load_properties, original_geometry, restore_label, restore_probabilities
from medseglatdiff.preprocessing.preprocess import preprocess, preprocess_arrays


def _dice(a, b):
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    return 2.0 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1)


def _block(target_spacing, dims):
    return {
        "target_spacing": list(target_spacing),
        "slice_axis": None,
        "crop_to_nonzero": True,
        "anisotropy_threshold": 3.0,
        "normalization": [
            {"channel": c, "name": "MR", "scheme": "zscore", "params": {"use_nonzero_mask": True}} for c in range(dims)
        ],
    }


def test_round_trip_2d_exact(lidc_raw, tmp_path):
    work = tmp_path / "work"
    plan(work, dataset=lidc_raw.root, memory_gb=4, progress=False)
    preprocess(lidc_raw.root, work, progress=False)
    for case in lidc_raw.case_ids():
        raw = read_case(CaseFiles.from_spec(lidc_raw, case))
        props = load_properties(work / "2d" / f"{case}.json")
        data = np.load(work / "2d" / f"{case}.npz")
        np.testing.assert_array_equal(restore_label(data["label"], props), raw.label)
        np.testing.assert_array_equal(restore_label(data["raters"], props), raw.raters)
        assert original_geometry(props) == raw.geometry


def test_round_trip_2d_resampled(kvasir_raw, tmp_path):
    work = tmp_path / "work"
    plan(work, dataset=kvasir_raw.root, memory_gb=4, progress=False)
    preprocess(kvasir_raw.root, work, progress=False)
    for case in kvasir_raw.case_ids():
        raw = read_case(CaseFiles.from_spec(kvasir_raw, case))
        props = load_properties(work / "2d" / f"{case}.json")
        label = np.load(work / "2d" / f"{case}.npz")["label"]
        restored = restore_label(label[0], props)  # spatial-only input is accepted too
        assert restored.shape == raw.label.shape and restored.dtype == np.uint8
        assert original_geometry(props).allclose(raw.geometry)
        assert _dice(restored, raw.label) > 0.95
        probs = restore_probabilities(label.astype(np.float32), props)
        assert probs.shape == raw.label.shape and 0 <= probs.min() and probs.max() <= 1


def _padded_brats_case(brats_raw, spacing, background=0.0):
    """A real BraTS crop placed inside a constant background, so cropping to the foreground does something."""
    raw = read_case(CaseFiles.from_spec(brats_raw, brats_raw.case_ids()[0]))
    pad = ((0, 0), (5, 3), (2, 6), (4, 1))
    geometry = Geometry(spacing, raw.geometry.origin, raw.geometry.direction)
    image = np.pad(raw.image, pad, constant_values=background)
    return RawCase(raw.case_id, image, np.pad(raw.label, pad), None, geometry)


@pytest.mark.parametrize("background", [0.0, -3.6243944])  # zeros, or DeepMedic's constant z-scored background
def test_round_trip_3d_exact_with_crop(brats_raw, background):
    case = _padded_brats_case(brats_raw, (1.0, 1.0, 1.0), background)
    arrays, props = preprocess_arrays(case, _block((1.0, 1.0, 1.0), 2))
    assert props["bbox"] == [[5, 45], [2, 42], [4, 44]]
    assert props["background_values"] == pytest.approx([background] * 2)
    assert arrays["label"].shape == (1, 40, 40, 40)
    restored = restore_label(arrays["label"], props)
    np.testing.assert_array_equal(restored, case.label)
    probs = restore_probabilities(np.stack([arrays["label"][0] == c for c in range(5)]).astype(np.float32), props)
    assert probs.shape == (5, 48, 48, 45)
    assert probs[0, 0, 0, 0] == 1.0 and probs[1:, 0, 0, 0].sum() == 0.0  # background outside the crop box
    np.testing.assert_array_equal(np.argmax(probs, axis=0)[None], case.label)


@pytest.mark.parametrize("spacing, target", [((1.0, 1.0, 2.0), (1.5, 1.5, 1.5)), ((1.0, 1.0, 4.0), (1.0, 1.0, 2.0))])
def test_round_trip_3d_resampled(brats_raw, spacing, target):
    case = _padded_brats_case(brats_raw, spacing)
    arrays, props = preprocess_arrays(case, _block(target, 2))
    assert props["shape_after_resampling"] != props["shape_after_crop"]
    restored = restore_label(arrays["label"], props)
    assert restored.shape == case.label.shape
    assert set(np.unique(restored)) == set(np.unique(case.label))  # no class lost either way
    assert _dice(restored, case.label) > 0.9
    assert props["separate_axis"] == (2 if spacing[2] / spacing[0] > 3 else None)


def test_shape_mismatch_is_reported(brats_raw, tmp_path):
    case = _padded_brats_case(brats_raw, (1.0, 1.0, 1.0))
    _, props = preprocess_arrays(case, _block((1.0, 1.0, 1.0), 2))
    with pytest.raises(MedsegError, match="does not match the preprocessed grid"):
        restore_label(np.zeros((1, 10, 10, 10), np.uint8), props)
    with pytest.raises(MedsegError, match="properties not found"):
        load_properties(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(MedsegError, match="not valid JSON"):
        load_properties(tmp_path / "bad.json")
    json.dumps(props)  # properties are plain JSON
