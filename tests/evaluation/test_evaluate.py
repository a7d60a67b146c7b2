"""`medseg evaluate` on a prediction folder made by hand from a real multi-rater dataset."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from medseglatdiff.datasets.demo_data import generate_demo_dataset
from medseglatdiff.errors import MedsegError
from medseglatdiff.evaluation.evaluate import evaluate
from medseglatdiff.inference.layout import PredictionLayout
from medseglatdiff.io import read_image, write_image


@pytest.fixture()
def demo(tmp_path: Path):
    return generate_demo_dataset(tmp_path / "raw", num_cases=4)


def _predict_from_raters(spec, out: Path, perfect_case: str) -> PredictionLayout:
    """Fake predictions: the samples are the raters themselves for one case, and shifted raters for the others."""
    layout = PredictionLayout(out, spec.file_ending)
    for case in spec.case_ids():
        raters = [read_image(f) for f in spec.rater_files(case)]
        geometry = raters[0].geometry
        samples = [r.array for r in raters] if case == perfect_case else [np.roll(r.array, 3, axis=1) for r in raters]
        for k, sample in enumerate(samples):
            write_image(sample, geometry, layout.sample(case, k))
        mean = np.mean(samples, axis=0)
        write_image((mean >= 0.5).astype(np.uint8), geometry, layout.mask(case))
        write_image(np.rint(mean * 255).astype(np.uint8), geometry, layout.probability(case))
        write_image(np.full_like(mean, 255, dtype=np.uint8), geometry, layout.confidence(case))
    return layout


def test_evaluate_writes_csv_summary_and_figures(demo, tmp_path: Path) -> None:
    perfect = demo.case_ids()[1]
    _predict_from_raters(demo, tmp_path / "pred", perfect)
    summary = evaluate(tmp_path / "pred", demo.root, out=tmp_path / "eval")
    rows = {r["case"]: r for r in csv.DictReader((tmp_path / "eval" / "per_case.csv").open())}
    assert set(rows) == set(demo.case_ids())
    assert float(rows[perfect]["ged"]) == pytest.approx(0.0, abs=1e-9)
    assert float(rows[perfect]["hm_iou"]) == pytest.approx(1.0)
    assert float(rows[perfect]["dice_lesion"]) == pytest.approx(1.0)  # majority of raters == label
    assert float(rows[perfect]["ece"]) == pytest.approx(0.0, abs=2e-3)  # 8-bit PNG maps: 1/255 steps
    others = [r for c, r in rows.items() if c != perfect]
    assert all(float(r["ged"]) > 0 for r in others)
    on_disk = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert on_disk["num_cases"] == 4 and summary["metrics"]["ged"]["n"] == 4
    for metric in ("dice", "iou", "hd95", "assd", "ged", "hm_iou", "ci", "ece"):
        assert metric in on_disk["metrics"], metric
    assert "lesion" in on_disk["per_class"]
    for figure in ("metric_histograms.png", "reliability_diagram.png", "worst_cases.png"):
        assert (tmp_path / "eval" / "figures" / figure).stat().st_size > 1000


def test_evaluate_errors_name_the_problem(demo, tmp_path: Path) -> None:
    with pytest.raises(MedsegError, match="prediction folder not found"):
        evaluate(tmp_path / "absent", demo.root)
    (tmp_path / "pred").mkdir()
    write_image(
        np.zeros((1, 64, 64), np.uint8),
        read_image(demo.label_file(demo.case_ids()[0])).geometry,
        tmp_path / "pred" / "stranger.png",
    )
    with pytest.raises(MedsegError, match="stranger"):
        evaluate(tmp_path / "pred", demo.root)
    (tmp_path / "pred" / "stranger.png").unlink()
    write_image(
        np.zeros((1, 32, 32), np.uint8),
        read_image(demo.label_file(demo.case_ids()[0])).geometry,
        tmp_path / "pred" / f"{demo.case_ids()[0]}.png",
    )
    with pytest.raises(MedsegError, match="original geometry"):
        evaluate(tmp_path / "pred", demo.root, figures=False)


def test_a_0_255_prediction_is_an_error_with_the_verify_hint(demo, tmp_path: Path) -> None:
    layout = _predict_from_raters(demo, tmp_path / "pred", demo.case_ids()[0])
    case = demo.case_ids()[2]
    mask = read_image(layout.mask(case))
    write_image(mask.array.astype(np.uint8) * 255, mask.geometry, layout.mask(case))
    expected = rf"{case}\.png: holds value\(s\) 255, .*labels allow only 0, 1; masks look saved as 0/255"
    with pytest.raises(MedsegError, match=expected):
        evaluate(tmp_path / "pred", demo.root, figures=False, surface=False)


def test_references_without_a_prediction_are_listed_and_strict_refuses(demo, tmp_path: Path) -> None:
    layout = _predict_from_raters(demo, tmp_path / "pred", demo.case_ids()[0])
    missing = demo.case_ids()[3]
    layout.mask(missing).unlink()
    summary = evaluate(tmp_path / "pred", demo.root, figures=False, surface=False)
    assert summary["num_cases"] == 3 and summary["unpredicted_cases"] == [missing]
    with pytest.raises(MedsegError, match=rf"1 reference case\(s\) .* have no prediction, e.g. {missing}"):
        evaluate(tmp_path / "pred", demo.root, figures=False, surface=False, strict=True)


def test_ignore_label_voxels_are_not_scored(demo, tmp_path: Path) -> None:
    raw = demo.root
    data = json.loads((raw / "dataset.json").read_text())
    data["labels"]["ignore"] = 2
    (raw / "dataset.json").write_text(json.dumps(data))
    layout = PredictionLayout(tmp_path / "pred", ".png")
    case = demo.case_ids()[0]
    label = read_image(demo.label_file(case))
    reference = label.array.copy()
    reference[:, :10] = 2  # unannotated rows
    write_image(reference, label.geometry, demo.label_file(case))
    prediction = label.array.copy()
    prediction[:, :10] = 1 - (prediction[:, :10] > 0)  # wrong everywhere, but only where nothing is annotated
    write_image(prediction.astype(np.uint8), label.geometry, layout.mask(case))
    summary = evaluate(tmp_path / "pred", raw, out=tmp_path / "eval", figures=False)
    assert summary["label_scheme"]["ignore"] == 2 and list(summary["per_class"]) == ["lesion"]
    assert summary["metrics"]["dice"]["mean"] == pytest.approx(1.0)
