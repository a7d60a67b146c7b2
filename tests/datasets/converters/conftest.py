"""Fixtures for the converter tests: a checker of written raw datasets."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.io import read_image


def _pixels(path) -> np.ndarray:
    """Label / mask pixels; PNGs through PIL directly (fast), everything else through read_image."""
    if str(path).endswith(".png"):
        return np.asarray(Image.open(path))
    return read_image(path).array


def _check(spec: DatasetSpec, num_cases: int, stride: int = 1) -> None:
    cases = spec.case_ids()
    assert spec.num_training == len(cases) == num_cases
    assert sorted(p.name for p in spec.root.iterdir() if p.name.startswith(".")) == [], "no staging leftovers"
    assert not (spec.root.parent / f".{spec.root.name}.partial").exists()
    allowed = set(spec.label_values)
    for case in cases[::stride]:
        files = spec.image_files(case)
        assert all(f.is_file() for f in files)
        label = _pixels(spec.label_file(case))
        assert set(np.unique(label).tolist()) <= allowed, case
        for rater in spec.rater_files(case):
            assert set(np.unique(_pixels(rater)).tolist()) <= {0, 1}, rater
    if spec.case_groups:
        assert set(spec.case_groups) == set(cases)


@pytest.fixture(scope="session")
def check_dataset() -> Callable[..., None]:
    """``check_dataset(spec, num_cases, stride=1)``: counts, label values, raters 0/1, groups cover all cases."""
    return _check
