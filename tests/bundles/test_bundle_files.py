"""Every bundle is complete, carries only its differences, and its settings name real keys of configs/train.json."""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import pytest
from monai.bundle import ConfigParser

from medseglatdiff.errors import MedsegError
from medseglatdiff.resources import bundles_dir, configs_dir
from medseglatdiff.training import build_parser, bundle_path, flatten_settings, layered_settings, nested_settings

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


def test_both_autoencoders_are_one_stage_definition() -> None:
    shared = json.loads((configs_dir() / "train.json").read_text())
    assert shared["image_autoencoder"] == shared["mask_autoencoder"] == "%autoencoder_stage", (
        "the autoencoder stages are macros of one definition, not copies"
    )
    deltas = json.loads((configs_dir() / "autoencoders.json").read_text())
    assert {key.split("#")[0] for key in deltas} == {"image_autoencoder", "mask_autoencoder"}
    assert len(deltas) < 40, "the stage deltas stay small"


def test_each_autoencoder_block_refers_to_its_own_values(lidc_work: Path) -> None:
    parser = build_parser(
        "train.json",
        settings={"image_autoencoder": {"lr": 0.5}, "mask_autoencoder#lr": 0.25, "num_workers": 0},
        dataset_dir=str(lidc_work),
    )
    parser.parse(reset=True)
    for stage, lr, key, loss in (
        ("image_autoencoder", 0.5, "image", "ImageAutoencoderLoss"),
        ("mask_autoencoder", 0.25, "mask", "MaskAutoencoderLoss"),
    ):
        optimizer = parser.get_parsed_content(f"{stage}#optimizer")
        network = parser.get_parsed_content(f"{stage}#network")
        assert optimizer.param_groups[0]["lr"] == lr
        assert {id(p) for p in optimizer.param_groups[0]["params"]} == {id(p) for p in network.parameters()}
        trainer = parser.get_parsed_content(f"{stage}#trainer")
        assert trainer.network is network and trainer.prepare_batch.input_key == key
        assert type(trainer.loss_function).__name__ == loss
        assert trainer.state.key_metric_name == f"{stage}_epoch_loss"
        assert Path(parser.get_parsed_content(f"{stage}#stage_dir")).name == stage


def test_settings_layers_later_wins_and_replaces_what_is_below() -> None:
    ids = layered_settings(
        {"augmentation": {"rotation_degrees": 180.0}, "denoiser": {"lr": 1.0, "network_def": {"channels": [8]}}},
        {"denoiser#lr": 2.0},
        {"denoiser": {"network_def": {"channels": [4, 8]}}},
    )
    assert ids == {"augmentation#rotation_degrees": 180.0, "denoiser#lr": 2.0, "denoiser#network_def#channels": [4, 8]}
    assert layered_settings({"augmentation": {"p_elastic": 0.1}}, {"augmentation": {"_target_": "x"}}) == {
        "augmentation": {"_target_": "x"}
    }, "a component replaces the block whole"
    assert nested_settings(ids)["denoiser"] == {"lr": 2.0, "network_def": {"channels": [4, 8]}}
    with pytest.raises(MedsegError, match="denoiser#lr"):
        nested_settings({"denoiser": 1, "denoiser#lr": 2})


def test_a_setting_with_no_place_in_the_config_is_a_clear_error() -> None:
    with pytest.raises(MedsegError, match="no_such_block#lr"):
        build_parser("train.json", settings={"no_such_block": {"lr": 1.0}})
