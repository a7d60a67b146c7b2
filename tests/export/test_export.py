"""``medseg export``: the bundle's layout, MONAI's checks, the TorchScript network, running it, and failures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from medseglatdiff.errors import MedsegError
from medseglatdiff.export import EnsembleSampler, export, locate_bundle_root, schema_path, verify_bundle
from medseglatdiff.inference.model_loading import UntrainedModelError

STAGES = ("image_autoencoder", "mask_autoencoder", "denoiser")


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_bundle_has_the_specification_layout(lidc_bundle: Path) -> None:
    import monai

    for name in (
        "configs/metadata.json",
        "configs/inference.json",
        "configs/logging.conf",
        "models/model.pt",
        "models/model.ts",
        "docs/README.md",
        "LICENSE",
    ):
        assert (lidc_bundle / name).is_file(), name
    fold = lidc_bundle / "models" / "2d" / "fold_0"
    for stage in STAGES:
        assert sorted(p.name for p in (fold / stage).iterdir()) == ["done.json", "model.pt"]  # no checkpoint.pt
    assert {"model.json", "plans.json", "settings.json"} <= {p.name for p in fold.iterdir()}
    assert not list(lidc_bundle.rglob("tensorboard")) and not _leftovers(lidc_bundle.parent)

    meta = json.loads((lidc_bundle / "configs" / "metadata.json").read_text())
    assert meta["monai_version"] == monai.__version__ and meta["version"] in meta["changelog"]
    assert meta["required_packages_version"]["medseglatdiff"]
    image, pred = meta["network_data_format"]["inputs"]["image"], meta["network_data_format"]["outputs"]["pred"]
    assert (image["num_channels"], image["spatial_shape"], image["modality"]) == (1, [64, 64], "CT")
    assert (pred["num_channels"], pred["value_range"]) == (2, [0, 1])  # 2 samples per image
    assert meta["medseglatdiff"]["folds"] == ["fold_0"] and meta["medseglatdiff"]["num_inference_steps"] == 2
    readme = (lidc_bundle / "docs" / "README.md").read_text()
    assert (
        "python -m monai.bundle run --config_file lidc/configs/inference.json --input_dir IN --output_dir OUT" in readme
    )


def test_monai_checks_accept_the_bundle_and_the_schema_rejects_bad_metadata(lidc_bundle: Path, tmp_path: Path) -> None:
    verify_bundle(lidc_bundle)  # monai.bundle verify_metadata (shipped schema, no network) + verify_net_in_out
    from monai.bundle import verify_metadata

    for broken in ({"drop": "network_data_format"}, {"drop": "required_packages_version"}, {"shape": "large"}):
        meta = json.loads((lidc_bundle / "configs" / "metadata.json").read_text())
        if "drop" in broken:
            del meta[broken["drop"]]
        else:
            meta["network_data_format"]["inputs"]["image"]["spatial_shape"] = broken["shape"]
        path = tmp_path / "metadata.json"
        path.write_text(json.dumps(meta))
        with pytest.raises(ValueError, match="Failed validating"):
            verify_metadata(meta_file=str(path), filepath=str(schema_path()))


def test_model_pt_and_torchscript_are_the_trained_fold(lidc_bundle: Path, lidc_model: Path) -> None:
    from monai.data import load_net_with_metadata

    state = torch.load(lidc_bundle / "models" / "model.pt", weights_only=True)
    trained = torch.load(lidc_model / "fold_0" / "denoiser" / "model.pt", weights_only=True)
    for key, value in trained["network"].items():
        assert torch.equal(state[f"denoiser.{key}"], value)
    assert float(state["scaling.mask"]) == float(trained["scaling"]["mask"]) > 0

    config = json.loads((lidc_bundle / "configs" / "inference.json").read_text())["network_def"]
    eager = EnsembleSampler(
        config["networks"],
        config["diffusion"],
        num_samples=2,
        num_inference_steps=2,
        conditioning=config["conditioning"],
    ).eval()
    eager.load_state_dict(state)
    traced, meta, extra = load_net_with_metadata(
        str(lidc_bundle / "models" / "model.ts"), more_extra_files=("inference.json",)
    )
    assert (
        meta["network_data_format"]["outputs"]["pred"]["num_channels"] == 2
        and json.loads(extra["inference.json"])["network_def"]
    )
    image = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        torch.manual_seed(3)
        expected = eager(image)
        torch.manual_seed(3)
        got = traced(image)
        other = traced(torch.rand(2, 1, 96, 64))  # batch and size may differ from the traced example
    assert got.shape == (1, 2, 64, 64) and 0 <= float(got.min()) and float(got.max()) <= 1
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert other.shape == (2, 2, 96, 64)


@pytest.mark.slow
def test_monai_bundle_run_predicts_from_a_moved_copy(lidc_bundle: Path, shared_data: Path, tmp_path: Path) -> None:
    moved = shutil.copytree(lidc_bundle, tmp_path / "elsewhere" / "lidc")
    images = sorted((shared_data / "lidc_idri" / "images").glob("*.png"))[:2]
    inputs = tmp_path / "in"
    inputs.mkdir()
    for image in images:
        shutil.copy(image, inputs / image.name)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    command = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        str(moved / "configs" / "inference.json"),
        "--input_dir",
        str(inputs),
        "--output_dir",
        str(tmp_path / "out"),
    ]
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    out = tmp_path / "out"
    record = json.loads((out / "prediction.json").read_text())
    assert record["model"] == str((moved / "models" / "2d").resolve())  # the moved copy, found from its own config
    assert record["folds"] == ["fold_0"] and record["num_samples"] == 2 and record["num_inference_steps"] == 2
    from medseglatdiff.io.readers import read_image

    for image in images:
        mask = read_image(out / image.name).array
        assert mask.shape == read_image(image).array.shape and set(np.unique(mask)) <= {0, 1}
        assert (out / "confidence" / image.name).is_file() and (out / "probability" / image.name).is_file()
        assert (out / "overlays" / image.name).is_file()


def test_inference_config_names_missing_arguments_and_finds_its_folder(
    lidc_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monai.bundle import ConfigParser

    from medseglatdiff.errors import user_error

    parser = ConfigParser()
    parser.read_config(str(lidc_bundle / "configs" / "inference.json"))
    with pytest.raises(RuntimeError) as raised:
        parser.get_parsed_content("input_dir")
    assert "--input_dir is required" in str(user_error(raised.value))

    uid = parser["bundle_uid"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if Path(p or ".").resolve() != lidc_bundle.resolve()])
    with pytest.raises(MedsegError, match="--bundle_root"):
        locate_bundle_root(uid)
    monkeypatch.setattr(sys, "path", [sys.path[0], str(lidc_bundle), *sys.path[1:]])  # what ConfigWorkflow.run does
    assert locate_bundle_root(uid) == str(lidc_bundle.resolve())


def test_export_refuses_an_untrained_model_and_an_existing_bundle(
    lidc_model: Path, lidc_bundle: Path, tmp_path: Path
) -> None:
    half = tmp_path / "half" / "fold_0"
    shutil.copytree(lidc_model / "fold_0", half, ignore=shutil.ignore_patterns("tensorboard"))
    (half / "denoiser" / "done.json").unlink()
    dist = tmp_path / "dist"
    dist.mkdir()
    with pytest.raises(UntrainedModelError, match="denoiser"):
        export(half.parent, dist / "half")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UntrainedModelError, match="train"):
        export(tmp_path / "empty", dist / "empty")
    with pytest.raises(MedsegError, match="exists"):
        export(lidc_model, lidc_bundle)
    assert not list(dist.iterdir())


def test_a_failed_export_leaves_nothing_behind(
    lidc_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import medseglatdiff.export.bundle as bundle_module

    def broken(bundle: Path, input_shape: list[int]) -> None:
        assert (bundle / "models" / "model.pt").is_file()  # the bundle was half written when the trace failed
        raise RuntimeError("trace failed")

    monkeypatch.setattr(bundle_module, "_export_torchscript", broken)
    old = tmp_path / "lidc"
    old.mkdir()
    (old / "marker").write_text("previous bundle")
    with pytest.raises(RuntimeError, match="trace failed"):
        export(lidc_model, old, overwrite=True)
    assert (old / "marker").read_text() == "previous bundle"  # the old bundle is untouched
    with pytest.raises(RuntimeError, match="trace failed"):
        export(lidc_model, tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lidc"]  # no half bundle, no temporary folder


def test_every_trained_fold_and_the_model_selection_are_exported(lidc_model: Path, tmp_path: Path) -> None:
    from medseglatdiff.inference.selection import ModelSelection, write_model_selection

    model = tmp_path / "2d"
    for fold in ("fold_0", "fold_1"):  # a second fold (same weights): enough to check what is copied and pooled
        shutil.copytree(
            lidc_model / "fold_0", model / fold, ignore=shutil.ignore_patterns("tensorboard", "checkpoint.pt")
        )
    write_model_selection(ModelSelection(num_samples=4, num_inference_steps=3, threshold=0.4), model)
    bundle = export(model, tmp_path / "dist" / "lidc2", verify=False)

    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    assert meta["medseglatdiff"]["folds"] == ["fold_0", "fold_1"]
    assert (meta["medseglatdiff"]["num_samples"], meta["medseglatdiff"]["num_inference_steps"]) == (
        4,
        3,
    )  # from the selection
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == 4
    assert json.loads((bundle / "models" / "2d" / "model_selection.json").read_text())["threshold"] == 0.4
    assert "threshold 0.4" in (bundle / "docs" / "README.md").read_text()
    assert sorted(p.name for p in (bundle / "models" / "2d").iterdir()) == ["fold_0", "fold_1", "model_selection.json"]
