"""Fixtures: small raw datasets built once per session from crops of the real data."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


def _load_helpers():
    name = "_medseg_planning_raw_datasets"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).resolve().parents[1] / "planning" / "raw_datasets.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


raw = _load_helpers()


@pytest.fixture(scope="session")
def lidc_raw(shared_data, tmp_path_factory):
    return raw.make_lidc(shared_data, tmp_path_factory.mktemp("raw") / "lidc")


@pytest.fixture(scope="session")
def kvasir_raw(shared_data, tmp_path_factory):
    return raw.make_kvasir(shared_data, tmp_path_factory.mktemp("raw") / "kvasir")


@pytest.fixture(scope="session")
def brats_raw(shared_data, tmp_path_factory):
    return raw.make_brats(shared_data, tmp_path_factory.mktemp("raw") / "brats")
