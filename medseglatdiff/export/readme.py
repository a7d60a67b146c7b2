"""``docs/README.md`` of an exported bundle: what the model is, how to run it, what each file holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def bundle_readme(
    name: str,
    metadata: Mapping[str, Any],
    configuration: str,
    folds: Sequence[str],
    selection: Mapping[str, Any] | None,
) -> str:
    """The Markdown text of ``docs/README.md``."""
    fmt = metadata["network_data_format"]
    image, pred = fmt["inputs"]["image"], fmt["outputs"]["pred"]
    ours = metadata["medseglatdiff"]
    shape = ", ".join(str(s) for s in image["spatial_shape"])
    folder = f"models/{configuration}/".ljust(26)
    pooled = f"one fold's model instead of the {len(folds)} pooled" if len(folds) > 1 else "one fold's model"
    chosen = ""
    if selection:
        chosen = (
            "\n`models/{c}/model_selection.json` (from `medseg find_best_configuration`) "
            "sets the threshold and the mask "
            "postprocessing that `run` applies: {s}.\n"
        ).format(
            c=configuration,
            s=", ".join(f"{k} {v}" for k, v in selection.items() if k not in ("selection_version", "reasons")),
        )
    return f"""# {name}

{metadata["task"]}

{metadata["description"]}

Intended use: {metadata["intended_use"]}
Training data: {metadata["data_source"]}.

## Run it

Needs `medseglatdiff` installed (`pip install -e .` in a clone of its repository) with its dependencies
(MONAI {metadata["monai_version"]}, PyTorch {metadata["pytorch_version"]} or later). From any folder:

```bash
python -m monai.bundle run --config_file {name}/configs/inference.json --input_dir IN --output_dir OUT
```

`IN` is an image file or a folder of images: PNG/JPEG, NIfTI, MHA/NRRD or a DICOM series folder, with
{image["num_channels"]} channel(s) ({", ".join(image["channel_def"].values())}); several channel files of one case are
named `CASE_0000`, `CASE_0001`, ... `OUT` receives, per case and in the input's format and geometry: the mask
(`CASE.ext`), `probability/` (mean of the samples), `confidence/` (1 - binary entropy of the mean: 1 where the
samples agree, 0 at a 50/50 split), `overlays/CASE.png`, and `prediction.json` (settings and files).

Change any value of `configs/inference.json` on the command line: `--num_samples 16`, `--num_inference_steps 20`,
`--threshold 0.4`, `--fold 0` ({pooled}), `--save_samples True`,
`--device cpu`, `--seed 1`. The same in Python: `medseglatdiff.inference.predict.predict(IN, OUT,
"{name}/models/{configuration}")`.
{chosen}
## The network (`models/model.pt`, `models/model.ts`)

`network_def` is `medseglatdiff.export.EnsembleSampler`: the image autoencoder, the mask VAE, the latent denoiser
and the latent scale factors of `{folds[0]}`. Its `forward` takes a normalised image patch
`(B, {image["num_channels"]}, {shape})` (preprocessed as
`models/{configuration}/{folds[0]}/plans.json` says) and returns
`(B, {pred["num_channels"]}, {shape})`: {pred["num_channels"]} sampled foreground probabilities, each denoised from
Gaussian noise with {ours["num_inference_steps"]} DDIM steps and decoded by the mask VAE. Their mean thresholded at
{ours["threshold"]:g} is the mask. `model.pt` is its state dict; `model.ts` is a TorchScript **trace** made by
`monai.bundle ckpt_export` (scripting fails on MONAI's generative networks): the sampling loop is unrolled, so the
ensemble size and the step count are fixed ({pred["num_channels"]} and {ours["num_inference_steps"]}), while batch and
spatial sizes (multiples of the latent factor) may vary; the noise comes from torch's global generator
(`torch.manual_seed` makes it repeatable). It was traced on the CPU and runs there (the noise's device is a constant
of the trace); on a GPU use `run` or `network_def` with `model.pt`.

```python
import torch
net = torch.jit.load("{name}/models/model.ts")  # extra files: metadata.json, inference.json
samples = net(torch.zeros(1, {image["num_channels"]}, {shape}))  # -> (1, {pred["num_channels"]}, {shape})
```

## Check it

```bash
python -m monai.bundle verify_metadata --meta_file {name}/configs/metadata.json \\
    --filepath "$(python -c 'import medseglatdiff.export as e; print(e.schema_path())')"
python -m monai.bundle verify_net_in_out network_def --meta_file {name}/configs/metadata.json \\
    --config_file {name}/configs/inference.json
```

The schema is shipped in the package (no network needed).

## Files

```
configs/metadata.json     MONAI bundle metadata (versions, network_data_format, changelog)
configs/inference.json    run: medseg predict on --input_dir / --output_dir; network_def
configs/logging.conf      logging of `monai.bundle run`
models/model.pt           state dict of network_def ({folds[0]})
models/model.ts           TorchScript trace of network_def
{folder}the trained folds medseg predict uses: {", ".join(folds)}
    fold_K/model.json     network arguments, patch size, inference defaults, dataset facts
    fold_K/plans.json     the plan (preprocessing applied to raw images)
    fold_K/<stage>/model.pt, done.json   weights and training record of each stage
docs/README.md            this file
LICENSE                   licence of the code and weights
```

## Licence

{metadata["copyright"]}. The training data has its own terms: {metadata["data_source"]}.
"""
