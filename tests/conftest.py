"""Shared fixtures: where the real datasets are (../shared/data beside the repository) and small raw datasets
cut from them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real datasets; CI always has them beside the clone."""
    root = Path(os.environ.get("MEDSEG_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    if not root.is_dir():
        pytest.fail(f"{root} is missing: the tests read real datasets from ../shared/data")
    return root


def _raw_datasets():
    """``tests/planning/raw_datasets.py``: small raw datasets cut from the real data (planning and preprocessing)."""
    import importlib.util
    import sys

    name = "_medseg_planning_raw_datasets"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "tests" / "planning" / "raw_datasets.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def lidc_raw(shared_data, tmp_path_factory):
    return _raw_datasets().make_lidc(shared_data, tmp_path_factory.mktemp("raw") / "lidc")


@pytest.fixture(scope="session")
def kvasir_raw(shared_data, tmp_path_factory):
    return _raw_datasets().make_kvasir(shared_data, tmp_path_factory.mktemp("raw") / "kvasir")


@pytest.fixture(scope="session")
def brats_raw(shared_data, tmp_path_factory):
    return _raw_datasets().make_brats(shared_data, tmp_path_factory.mktemp("raw") / "brats")
