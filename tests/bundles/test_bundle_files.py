"""Every bundle is complete, carries only its differences, and its settings name real keys of configs/train.json."""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import pytest
from monai.bundle import ConfigParser

from medseglatdiff.resources import bundles_dir
from medseglatdiff.training import build_parser, bundle_path, flatten_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
BUNDLES = ("isic", "cvc", "lidc", "brats")
FILES = ("train.json", "inference.json", "evaluate.json", "metadata.json", "logging.conf", "README.md")
METADATA_KEYS = (
    "version",
    "monai_version",
    "pytorch_version",
    "numpy_version",
    "required_packages_version",
    "task",
    "description",
    "authors",
    "copyright",
    "network_data_format",
)


@pytest.mark.parametrize("name", BUNDLES)
def test_bundle_is_complete_and_flat(name: str) -> None:
    folder = REPO_ROOT / "bundles" / name
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    metadata = json.loads((folder / "metadata.json").read_text())
    assert all(key in metadata for key in METADATA_KEYS)
    formats = metadata["network_data_format"]
    assert formats["inputs"]["image"]["num_channels"] >= 1 and "pred" in formats["outputs"]
    logging_conf = configparser.ConfigParser()
    logging_conf.read(folder / "logging.conf")
    assert "logger_root" in logging_conf


@pytest.mark.parametrize("name", BUNDLES)
def test_bundle_carries_only_differences(name: str) -> None:
    train = ConfigParser.load_config_file(REPO_ROOT / "bundles" / name / "train.json")
    assert "_target_" not in json.dumps(train), "definitions belong in configs/, bundles only set values"
    assert set(train) == {"imports", "dataset_dir", "fold", "overlays", "prepare", "settings", "training"}
    assert train["dataset_dir"] == f"work/{train['prepare'][-1].split('work/')[-1]}", (
        "the default work folder is the one the README prepares"
    )
    shared = build_parser("train.json")
    for key in flatten_settings(train["settings"]):
        top = key.split("#")[0]
        assert top in shared, f"bundles/{name}/train.json sets {key!r}, which configs/train.json does not define"
    assert train["settings"]["bundle_name"] == name


def test_settings_override_the_shared_config() -> None:
    parser = build_parser(
        "train.json", settings={"denoiser": {"lr": 0.5, "network_def": {"channels": [8, 16]}}}, fold=3
    )
    assert parser["denoiser#lr"] == 0.5
    assert parser["denoiser#network_def#channels"] == [8, 16]
    assert parser["denoiser#network_def#_target_"] == "medseglatdiff.networks.latent_denoiser"  # siblings kept
    assert parser["fold"] == 3


def test_bundle_path_finds_names_folders_and_files(tmp_path: Path) -> None:
    assert bundle_path("lidc") == bundles_dir() / "lidc" / "train.json"
    assert bundle_path("lidc").resolve() == (REPO_ROOT / "bundles" / "lidc" / "train.json").resolve(), (
        "bundles/ links to the package's"
    )
    assert bundle_path(REPO_ROOT / "bundles" / "cvc") == REPO_ROOT / "bundles" / "cvc" / "train.json"
    assert bundle_path(REPO_ROOT / "bundles" / "isic" / "train.json").name == "train.json"
