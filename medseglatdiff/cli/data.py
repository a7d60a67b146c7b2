"""Commands that make and check raw datasets: ``convert``, ``verify_dataset``, ``demo_data``, ``demo``."""

from __future__ import annotations

from typing import Any

from medseglatdiff.cli.errors import user_errors


@user_errors
def convert(name: str, src: str, out: str, num_workers: int = 1, overwrite: bool = False, **options: Any) -> None:
    """Convert a public dataset, as distributed or as sampled in ../shared/data, to the raw format.

    Args:
        name: one of isic2018, kvasir_seg, cvc_clinicdb, lidc, brats.
        src: the dataset folder as downloaded.
        out: the raw dataset folder to create (must not exist or be empty, unless --overwrite).
        num_workers: processes used to convert cases in parallel.
        overwrite: replace an existing output folder.
        options: converter-specific options (see ``docs/dataset_format.md``).
    """
    from medseglatdiff.datasets.converters import convert as run_convert

    spec = run_convert(name, src, out, num_workers=num_workers, overwrite=overwrite, **options)
    groups = f", {len(set(spec.case_groups.values()))} {spec.group_kind} groups" if spec.case_groups else ""
    raters = f", {spec.num_raters} raters per case" if spec.num_raters else ""
    print(f"wrote {spec.num_training} cases to {spec.root}{raters}{groups}")


@user_errors
def verify_dataset(dataset: str, num_workers: int = 1) -> None:
    """Check a raw dataset and list every problem at once (never writes into it).

    Args:
        dataset: the raw dataset folder (with dataset.json).
        num_workers: processes used to read cases in parallel.
    """
    from medseglatdiff.datasets.verify import verify_dataset as run_verify

    report = run_verify(dataset, num_workers=num_workers)
    print(report.format())
    if not report.ok:
        raise SystemExit(1)


@user_errors
def demo_data(
    out: str, num_cases: int = 24, spatial_dims: int = 2, num_raters: int = 4, seed: int = 0, overwrite: bool = False
) -> None:
    """Generate the small deterministic multi-rater demo dataset (2D by default, 3D with --spatial_dims 3).

    Args:
        out: the raw dataset folder to create.
        num_cases: number of cases.
        spatial_dims: 2 or 3.
        num_raters: rater masks per case.
        seed: random seed; the same seed gives the same files.
        overwrite: replace an existing output folder.
    """
    from medseglatdiff.datasets.demo_data import generate_demo_dataset

    spec = generate_demo_dataset(
        out, num_cases=num_cases, spatial_dims=spatial_dims, num_raters=num_raters, seed=seed, overwrite=overwrite
    )
    print(f"wrote {spec.num_training} {spatial_dims}D demo cases with {spec.num_raters} raters to {spec.root}")


@user_errors
def demo(
    out: str = "demo_output",
    num_cases: int = 24,
    seed: int = 0,
    epochs: int = 1,
    num_samples: int = 8,
    num_inference_steps: int = 5,
) -> None:
    """The main job end to end on generated demo data (what ``make demo`` runs): data, verify, plan, train, predict,
    evaluate.

    Args:
        out: folder for every demo artefact.
        num_cases: demo cases (two per simulated patient).
        seed: seed of the demo data.
        epochs: training length multiplier (1: about 2 CPU-core minutes of training).
        num_samples: masks sampled per held-out image.
        num_inference_steps: DDIM steps per sample.
    """
    from medseglatdiff.demo import run_demo

    run_demo(
        out,
        num_cases=num_cases,
        seed=seed,
        epochs=epochs,
        num_samples=num_samples,
        num_inference_steps=num_inference_steps,
    )
