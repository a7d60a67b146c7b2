"""``inference_instructions.md``: what model selection chose, why, and the exact commands to use the model."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medseglatdiff.resources import bundle_names, bundles_dir


def _q(path: str | Path) -> str:
    return shlex.quote(str(path))


def inference_instructions(
    model_dir: Path,
    selection: Mapping[str, Any],
    report: Mapping[str, Any],
    cv: Mapping[str, Any],
    folds: Sequence[str],
) -> str:
    """The Markdown text (see the module doc).

    Args:
        model_dir: the trained model folder (``medseg predict --model``).
        selection: the content of ``model_selection.json``.
        report: find_best_configuration's report (frontier point, threshold and postprocessing evidence).
        cv: the cross-validation summary.
        folds: the trained fold folders that ``--fold all`` pools.
    """
    model = model_dir.resolve()
    reasons = selection.get("reasons", {})
    post = " + ".join(selection["postprocessing"]) or "none"
    bundle = str(cv.get("bundle", "lidc"))
    shipped = bundle in bundle_names("inference.json")
    bundle_config = (
        str(bundles_dir() / bundle / "inference.json") if shipped else f"{bundle.rstrip('/')}/inference.json"
    )
    name = Path(bundle.rstrip("/")).name or "model"
    per_fold = -(-int(selection["num_samples"]) // max(len(folds), 1))
    rows = [
        ("ensemble size", selection["num_samples"], reasons.get("num_samples", "")),
        ("DDIM steps", selection["num_inference_steps"], reasons.get("num_inference_steps", "")),
        ("threshold", selection["threshold"], reasons.get("threshold", "")),
        ("postprocessing", post, reasons.get("postprocessing", "")),
    ]
    lines = [
        f"# Inference instructions: {model}",
        "",
        "Chosen by `medseg find_best_configuration` from the cross-validation of fold(s) "
        f"{', '.join(str(f) for f in cv['folds'])} "
        f"({cv['num_cases']} validation cases, `crossval/cv_summary.md`). "
        f"Written to `{model / 'model_selection.json'}`, which "
        "`medseg predict`, the bundle's `inference.json` and `medseg export` read; a command-line flag overrides it.",
        "",
        "| setting | value | why |",
        "|---|---|---|",
        *[f"| {k} | {v} | {why} |" for k, v, why in rows],
        "",
        f"Expected on new images like the validation cases (one fold's model, the chosen settings): mean Dice "
        f"{report['expected']['dice']:.4f}"
        + (
            f", GED {report['expected']['ged']:.4f}, HM-IoU {report['expected']['hm_iou']:.4f}"
            if "ged" in report["expected"]
            else ""
        )
        + f"; about {report['expected']['seconds_per_image']:.3g} s of sampling per image "
        f"on {report['timing']['device']}.",
        "The speed/accuracy frontier: `crossval/selection/frontier.md` (table), `frontier.csv`, `frontier.png`.",
        "",
        "## Predict new images",
        "",
        f"With every trained fold ({', '.join(folds)}) pooled: the {selection['num_samples']} samples "
        "are shared among the "
        f"folds' models (about {per_fold} each; every fold draws at least one, "
        f"so {max(int(selection['num_samples']), len(folds))} in all); "
        "each fold's model encodes the image once, so the fixed "
        "part of the sampling time is paid once per fold.",
        "",
        "```bash",
        f"medseg predict -i INPUT_FOLDER -o OUTPUT_FOLDER --model {_q(model)} --fold all",
        "```",
        "",
        "One fold only (faster, a little less accurate): `--fold 0`. Keep every sample with `--save_samples` "
        "(needed for GED, HM-IoU and CI in `medseg evaluate`).",
        "",
        "Python:",
        "",
        "```python",
        "from medseglatdiff.inference.predict import predict",
        f"predict('INPUT_FOLDER', 'OUTPUT_FOLDER', {str(model)!r}, fold='all')",
        "```",
        "",
        "With the bundle (the same prediction):",
        "",
        "```bash",
        f"python -m monai.bundle run --config_file {bundle_config} --model_dir {_q(model)} --fold all \\",
        "    --input_dir INPUT_FOLDER --output_dir OUTPUT_FOLDER",
        "```",
        "",
        "## Evaluate (when the images have reference masks in a raw dataset)",
        "",
        "```bash",
        "medseg evaluate --pred OUTPUT_FOLDER --ref RAW_DATASET",
        "```",
        "",
        "## Export for deployment",
        "",
        "```bash",
        f"medseg export --model {_q(model)} --out dist/{name}",
        "```",
        "",
        "The choice was measured with one fold's model per validation case (the fold that did not see it); a pooled "
        "ensemble of several folds' models is not cross-validated (every case was in some fold's training data).",
        "",
    ]
    return "\n".join(lines)
