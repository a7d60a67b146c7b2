"""The MONAI Deploy application, run as ``python -m medseglatdiff.deploy -i IN -o OUT -m MODEL`` (needs the
``deploy`` extra)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medseglatdiff.io.readers import read_image

DEPLOY_EXTRA = ("holoscan", "highdicom", "pydicom", "monai.deploy")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not all(importlib.util.find_spec(name) for name in DEPLOY_EXTRA),
        reason='the deploy extra is not installed (pip install -e ".[deploy]")',
    ),
]


def _run_app(input_path: Path, output: Path, model: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "medseglatdiff.deploy", "-i", str(input_path), "-o", str(output), "-m", str(model)]
    result = subprocess.run(
        command, cwd=output.parent, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def test_dicom_series_becomes_a_dicom_seg_and_a_confidence_map(
    flair_bundle: Path, flair_raw: Path, dicom_writer, tmp_path: Path
) -> None:
    import highdicom as hd
    import pydicom

    case = read_image(flair_raw / "imagesTr" / "brats_2013_pat0005_1_0000.nii.gz")
    volume = np.clip(np.rint(case.array[0] * 100), -3000, 3000).astype(np.int16)  # the FLAIR crop as stored integers
    files = dicom_writer(volume, tmp_path / "input" / "study" / "series", spacing=case.geometry.spacing)
    out = tmp_path / "output"
    _run_app(tmp_path / "input", out, flair_bundle.parent)  # -m: a folder holding the bundle, as in a package

    segs = list(out.glob("*.dcm"))
    assert len(segs) == 1
    seg = hd.seg.segread(segs[0])
    sources = [pydicom.dcmread(f) for f in files]
    assert (seg.Modality, seg.SegmentationType) == ("SEG", "BINARY")
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["tumour"]
    assert (
        seg.StudyInstanceUID == sources[0].StudyInstanceUID
        and seg.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    )
    pixels = seg.get_pixels_by_source_instance([s.SOPInstanceUID for s in sources], segment_numbers=[1])[..., 0]

    series_uid = sources[0].SeriesInstanceUID
    mask = read_image(out / f"{series_uid}.nii.gz")
    series = read_image(tmp_path / "input" / "study" / "series")
    assert mask.spatial_shape == series.spatial_shape and mask.geometry.allclose(series.geometry)
    expected = np.stack([mask.array[0][:, :, k].T for k in range(mask.spatial_shape[2])])  # slice k = instance k
    np.testing.assert_array_equal(pixels.astype(np.uint8), expected.astype(np.uint8))

    confidence = read_image(out / "confidence" / f"{series_uid}.nii.gz")
    assert confidence.geometry.allclose(series.geometry) and 0 <= confidence.array.min() <= confidence.array.max() <= 1
    record = json.loads((out / "prediction.json").read_text())
    assert record["num_samples"] == 2 and record["folds"] == ["fold_0"]
    assert (out / "overlays" / f"{series_uid}.png").is_file()


def test_image_file_gives_mask_and_confidence_in_its_format(
    flair_bundle: Path, flair_raw: Path, tmp_path: Path
) -> None:
    image = flair_raw / "imagesTr" / "brats_2013_pat0001_1_0000.nii.gz"
    out = tmp_path / "output"
    _run_app(image, out, flair_bundle)
    mask = read_image(out / "brats_2013_pat0001_1.nii.gz")
    source = read_image(image)
    assert mask.spatial_shape == source.spatial_shape and mask.geometry.allclose(source.geometry)
    assert set(np.unique(mask.array)) <= {0, 1}
    assert (out / "confidence" / "brats_2013_pat0001_1.nii.gz").is_file() and not list(out.glob("*.dcm"))


def test_a_single_slice_series_with_a_2d_model_becomes_a_dicom_seg(
    flair_slice_bundle: Path, flair_raw: Path, dicom_writer, tmp_path: Path
) -> None:
    import highdicom as hd
    import pydicom

    case = read_image(flair_raw / "imagesTr" / "brats_2013_pat0005_1_0000.nii.gz")
    volume = np.clip(np.rint(case.array[0][..., 14:15] * 100), -3000, 3000).astype(np.int16)  # one slice
    files = dicom_writer(volume, tmp_path / "input" / "study" / "series", spacing=case.geometry.spacing)
    out = tmp_path / "output"
    _run_app(tmp_path / "input", out, flair_slice_bundle.parent)
    (seg_file,) = out.glob("*.dcm")
    seg = hd.seg.segread(seg_file)
    source = pydicom.dcmread(files[0])
    assert seg.Modality == "SEG" and seg.StudyInstanceUID == source.StudyInstanceUID
    pixels = seg.get_pixels_by_source_instance([source.SOPInstanceUID], segment_numbers=[1])[..., 0]
    mask = read_image(out / f"{source.SeriesInstanceUID}.nii.gz")
    assert mask.spatial_shape == (*volume.shape[:2], 1)  # the 2D prediction on the slice's own grid
    np.testing.assert_array_equal(pixels[0].astype(np.uint8), mask.array[0][:, :, 0].T.astype(np.uint8))
