"""The embedded demo dataset: deterministic, multi-rater, 2D and 3D, in the raw format."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from medseglatdiff.cli import main
from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.datasets.demo_data import generate_demo_dataset
from medseglatdiff.io import read_image


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(root).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def test_2d_demo_is_deterministic_and_multi_rater(tmp_path: Path) -> None:
    spec = generate_demo_dataset(tmp_path / "a", num_cases=8, seed=3)
    again = generate_demo_dataset(tmp_path / "b", num_cases=8, seed=3)
    other = generate_demo_dataset(tmp_path / "c", num_cases=8, seed=4)
    assert _digest(spec.root) == _digest(again.root)
    assert _digest(spec.root) != _digest(other.root)
    assert spec.num_training == 8 and spec.num_raters == 4 and spec.file_ending == ".png"
    assert len(set(spec.case_groups.values())) == 4, "two cases per simulated patient"
    disagreement = []
    for case in spec.case_ids():
        raters = np.stack([read_image(f).array[0] for f in spec.rater_files(case)])
        label = read_image(spec.label_file(case)).array[0]
        assert set(np.unique(raters)) <= {0, 1} and set(np.unique(label)) <= {0, 1}
        np.testing.assert_array_equal(label, (2 * raters.sum(0) >= 4).astype(np.uint8))
        union, inter = raters.max(0).sum(), raters.min(0).sum()
        disagreement.append(1 - inter / max(union, 1))
        image = read_image(spec.image_files(case)[0]).array
        assert image.shape == (1, 64, 64) and image.std() > 5, "textured, not flat"
    assert 0.05 < np.mean(disagreement) < 0.9, "raters disagree, but outline the same lesions"


def test_3d_demo_has_anisotropic_geometry(tmp_path: Path) -> None:
    spec = generate_demo_dataset(tmp_path / "d3", num_cases=2, spatial_dims=3, size=24)
    case = spec.case_ids()[0]
    image = read_image(spec.image_files(case)[0])
    label = read_image(spec.label_file(case))
    assert spec.file_ending == ".nii.gz"
    assert image.spatial_shape == label.spatial_shape == (24, 24, 24)
    assert np.allclose(image.geometry.spacing, (0.8, 0.8, 1.5))
    assert label.array.sum() > 0


def test_cli_writes_demo_and_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "demo"
    main(["demo_data", "--out", str(out), "--num_cases", "2"])
    assert "wrote 2 2D demo cases" in capsys.readouterr().out
    assert DatasetSpec.load(out).num_training == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["demo_data", "--out", str(out), "--num_cases", "2"])
    assert exit_info.value.code == 2
    assert "--overwrite" in capsys.readouterr().err
