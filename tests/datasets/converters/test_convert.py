"""The converter registry and what every conversion shares: errors, overwrite, atomicity, the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from medseglatdiff.cli import main
from medseglatdiff.datasets.converters import CONVERTERS, convert, converter_options, lidc
from medseglatdiff.datasets.dataset_json import DatasetSpec
from medseglatdiff.errors import MedsegError


def test_registry_names_and_options() -> None:
    assert list(CONVERTERS) == ["isic2018", "kvasir_seg", "cvc_clinicdb", "lidc", "brats"]
    assert converter_options("isic2018") == {"max_size": None, "subset": "Training"}
    assert converter_options("cvc_clinicdb") == {"frame_table": None, "max_size": None}
    assert converter_options("lidc") == {}


def test_unknown_name_lists_the_converters(tmp_path: Path) -> None:
    with pytest.raises(MedsegError) as info:
        convert("lidc2", tmp_path, tmp_path / "out")
    assert all(name in str(info.value) for name in CONVERTERS)


def test_unknown_option_lists_the_options(shared_data: Path, tmp_path: Path) -> None:
    with pytest.raises(MedsegError, match="--max_sise.*--max_size, --subset"):
        convert("isic2018", shared_data / "isic_skin_lesion", tmp_path / "out", max_sise=256)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", list(CONVERTERS))
def test_wrong_src_is_a_clear_error(name: str, tmp_path: Path) -> None:
    with pytest.raises(MedsegError, match="folder not found"):
        convert(name, tmp_path / "nowhere", tmp_path / "out")
    unrelated = tmp_path / "downloads"
    (unrelated / "papers").mkdir(parents=True)
    (unrelated / "readme.txt").write_text("not a dataset")
    with pytest.raises(MedsegError, match="Accepted layouts") as info:
        convert(name, unrelated, tmp_path / "out")
    assert str(unrelated) in str(info.value)
    assert not (tmp_path / "out").exists()


def test_folder_of_several_datasets_is_ambiguous(shared_data: Path, tmp_path: Path) -> None:
    with pytest.raises(MedsegError, match="lidc_idri, lidc_idri_full.*as --src"):
        convert("lidc", shared_data, tmp_path / "out")


def test_existing_output_needs_overwrite(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    convert("lidc", shared_data / "lidc_idri", out)
    (out / "marker.txt").write_text("from the first run")
    with pytest.raises(MedsegError, match="--overwrite"):
        convert("lidc", shared_data / "lidc_idri", out)
    assert (out / "marker.txt").is_file(), "refused conversions leave the old dataset alone"
    spec = convert("lidc", shared_data / "lidc_idri", out, overwrite=True)
    assert spec.num_training == 40 and not (out / "marker.txt").exists()


def test_interrupted_conversion_leaves_no_output(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    original = lidc.load_case

    def failing(source: lidc.LidcSource):
        calls.append(source.case_id)
        if len(calls) == 5:
            raise RuntimeError("disk full")
        return original(source)

    monkeypatch.setattr(lidc, "load_case", failing)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="disk full"):
        convert("lidc", shared_data / "lidc_idri", out)
    assert len(calls) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "neither the dataset nor its staging folder remain"


def test_cli_convert(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "lidc"
    main(["convert", "lidc", "--src", str(shared_data / "lidc_idri"), "--out", str(out)])
    assert "wrote 40 cases" in capsys.readouterr().out
    assert DatasetSpec.load(out).extra["converted_by"] == "medseglatdiff convert lidc"
    with pytest.raises(SystemExit) as info:
        main(["convert", "nope", "--src", str(shared_data / "lidc_idri"), "--out", str(tmp_path / "x")])
    assert info.value.code == 2
    assert "isic2018, kvasir_seg, cvc_clinicdb, lidc, brats" in capsys.readouterr().err
