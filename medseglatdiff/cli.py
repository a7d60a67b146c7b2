"""The ``medseg`` command line: a thin `fire <https://github.com/google/python-fire>`_ layer.

Every command is a plain Python function elsewhere in the package; the wrappers here only turn results
into printed summaries and exit codes. Errors meant for the user (:class:`MedsegError`) print one clear
message and exit with status 2; a failed verification exits with status 1.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

from medseglatdiff.errors import MedsegError


def _user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MedsegError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper


@_user_errors
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


@_user_errors
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


@_user_errors
def demo_data(out: str, num_cases: int = 24, spatial_dims: int = 2, num_raters: int = 4, seed: int = 0, overwrite: bool = False) -> None:
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

    spec = generate_demo_dataset(out, num_cases=num_cases, spatial_dims=spatial_dims, num_raters=num_raters, seed=seed, overwrite=overwrite)
    print(f"wrote {spec.num_training} {spatial_dims}D demo cases with {spec.num_raters} raters to {spec.root}")


def _configurations(configurations: str | list[str] | tuple[str, ...] | None, more: tuple[str, ...]) -> list[str] | None:
    from medseglatdiff.planning.planner import parse_configurations

    return parse_configurations(configurations, *more)


@_user_errors
def extract_fingerprint(dataset: str, out: str, num_workers: int = 1) -> None:
    """Fingerprint a raw dataset: shapes, spacings, intensities, objects, raters -> OUT/dataset_fingerprint.json.

    Args:
        dataset: the raw dataset folder (with dataset.json).
        out: the work folder (or a .json file) to write.
        num_workers: processes reading cases in parallel.
    """
    from medseglatdiff.planning.fingerprint import FINGERPRINT_FILE
    from medseglatdiff.planning.fingerprint import extract_fingerprint as run_fingerprint

    fingerprint = run_fingerprint(dataset, out, num_workers=num_workers)
    summary = fingerprint["summary"]
    target = out if str(out).endswith(".json") else f"{out}/{FINGERPRINT_FILE}"
    print(f"fingerprinted {summary['num_cases']} {summary['spatial_dims']}D cases -> {target}")


@_user_errors
def plan(out: str, *more_configurations: str, dataset: str | None = None, memory_gb: float | None = None, configurations: str | None = None, num_workers: int = 1) -> None:
    """Plan every configuration from OUT/dataset_fingerprint.json -> OUT/plans.json (each value with its reason).

    Args:
        out: the work folder.
        dataset: the raw dataset; given, the fingerprint is computed first when missing or stale.
        memory_gb: training memory budget in GB; default 24 with a CUDA GPU, else 4.
        configurations: "2d", "3d" or both (``--configurations 2d 3d``); default all available.
        num_workers: processes for fingerprinting.
    """
    from medseglatdiff.planning.pipeline import plan as run_plan

    plans = run_plan(out, dataset=dataset, memory_gb=memory_gb, configurations=_configurations(configurations, more_configurations), num_workers=num_workers)
    for name, config in plans["configurations"].items():
        print(f"{name}: patch {config['patch_size']}, latent factor {config['latent_factor']}, "
              f"batch {config['image_autoencoder']['batch_size']}/{config['mask_autoencoder']['batch_size']}/{config['denoiser']['batch_size']}")
    print(f"wrote {out}/plans.json")


@_user_errors
def preprocess(dataset: str, out: str, *more_configurations: str, configurations: str | None = None, num_workers: int = 1, clean: bool = False) -> None:
    """Preprocess a raw dataset as OUT/plans.json says -> OUT/<configuration>/<case>.npz + .json.

    Args:
        dataset: the raw dataset folder.
        out: the work folder holding plans.json.
        configurations: which planned configurations (``--configurations 2d 3d``); default all.
        num_workers: processes working on cases in parallel.
        clean: delete earlier results and redo every case.
    """
    from medseglatdiff.preprocessing.preprocess import preprocess as run_preprocess

    counts = run_preprocess(dataset, out, configurations=_configurations(configurations, more_configurations), num_workers=num_workers, clean=clean)
    for name, count in counts.items():
        print(f"{name}: {count['written']} cases written, {count['skipped']} up to date")


@_user_errors
def plan_and_preprocess(
    dataset: str, out: str, *more_configurations: str, memory_gb: float | None = None, configurations: str | None = None, num_workers: int = 1, clean: bool = False
) -> None:
    """Verify, fingerprint, plan and preprocess a raw dataset into the work folder OUT.

    Args:
        dataset: the raw dataset folder (with dataset.json).
        out: the work folder: dataset_fingerprint.json, plans.json and one folder per configuration.
        memory_gb: training memory budget in GB; default 24 with a CUDA GPU, else 4.
        configurations: "2d", "3d" or both (``--configurations 2d 3d``); default all available.
        num_workers: processes working on cases in parallel.
        clean: recompute the fingerprint and redo every case.
    """
    from medseglatdiff.planning.pipeline import plan_and_preprocess as run

    result = run(dataset, out, memory_gb=memory_gb, configurations=_configurations(configurations, more_configurations), num_workers=num_workers, clean=clean)
    print(f"fingerprint: {result['fingerprint']}" + ("" if result["fingerprint_computed"] else " (up to date)"))
    print(f"plans: {result['plans']}")
    for name, count in result["preprocessed"].items():
        print(f"{name}: {count['written']} cases written, {count['skipped']} up to date")


def commands() -> dict[str, Callable[..., Any]]:
    """The CLI's commands by name."""
    return {
        "convert": convert,
        "verify_dataset": verify_dataset,
        "demo_data": demo_data,
        "extract_fingerprint": extract_fingerprint,
        "plan": plan,
        "preprocess": preprocess,
        "plan_and_preprocess": plan_and_preprocess,
    }


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``medseg`` console script."""
    import fire

    fire.Fire(commands(), command=argv, name="medseg")


if __name__ == "__main__":
    main()
