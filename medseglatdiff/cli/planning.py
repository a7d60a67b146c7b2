"""Commands that fingerprint, plan and preprocess: ``extract_fingerprint``, ``plan``, ``preprocess``,
``plan_and_preprocess``."""

from __future__ import annotations

from medseglatdiff.cli.errors import user_errors


def _configurations(
    configurations: str | list[str] | tuple[str, ...] | None, more: tuple[str, ...]
) -> list[str] | None:
    from medseglatdiff.planning.planner import parse_configurations

    return parse_configurations(configurations, *more)


@user_errors
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


@user_errors
def plan(
    out: str,
    *more_configurations: str,
    dataset: str | None = None,
    memory_gb: float | None = None,
    configurations: str | None = None,
    num_workers: int = 1,
    recipe: str = "default",
) -> None:
    """Plan every configuration from OUT/dataset_fingerprint.json -> OUT/plans.json (each value with its reason).

    Args:
        out: the work folder.
        dataset: the raw dataset; given, the fingerprint is computed first when missing or stale.
        memory_gb: training memory budget in GB; default 24 with a CUDA GPU, else 4.
        configurations: "2d", "3d" or both (``--configurations 2d 3d``); default all available.
        num_workers: processes for fingerprinting.
        recipe: the denoiser training recipe: "default" (chosen by measurement) or "published" (the method as
            published).
    """
    from medseglatdiff.planning.pipeline import plan as run_plan

    plans = run_plan(
        out,
        dataset=dataset,
        memory_gb=memory_gb,
        configurations=_configurations(configurations, more_configurations),
        num_workers=num_workers,
        recipe=recipe,
    )
    for name, config in plans["configurations"].items():
        print(
            f"{name}: patch {config['patch_size']}, latent factor {config['latent_factor']}, "
            f"batch {config['image_autoencoder']['batch_size']}/{config['mask_autoencoder']['batch_size']}/"
            f"{config['denoiser']['batch_size']}"
        )
    print(f"wrote {out}/plans.json")


@user_errors
def preprocess(
    dataset: str,
    out: str,
    *more_configurations: str,
    configurations: str | None = None,
    num_workers: int = 1,
    clean: bool = False,
) -> None:
    """Preprocess a raw dataset as OUT/plans.json says -> OUT/<configuration>/<case>.npz + .json.

    Args:
        dataset: the raw dataset folder.
        out: the work folder holding plans.json.
        configurations: which planned configurations (``--configurations 2d 3d``); default all.
        num_workers: processes working on cases in parallel.
        clean: delete earlier results and redo every case.
    """
    from medseglatdiff.preprocessing.preprocess import preprocess as run_preprocess

    counts = run_preprocess(
        dataset,
        out,
        configurations=_configurations(configurations, more_configurations),
        num_workers=num_workers,
        clean=clean,
    )
    for name, count in counts.items():
        removed = f", {count['removed']} removed (no longer in the raw dataset)" if count.get("removed") else ""
        print(f"{name}: {count['written']} cases written, {count['skipped']} up to date{removed}")


@user_errors
def plan_and_preprocess(
    dataset: str,
    out: str,
    *more_configurations: str,
    memory_gb: float | None = None,
    configurations: str | None = None,
    num_workers: int = 1,
    clean: bool = False,
    recipe: str = "default",
) -> None:
    """Verify, fingerprint, plan and preprocess a raw dataset into the work folder OUT.

    Args:
        dataset: the raw dataset folder (with dataset.json).
        out: the work folder: dataset_fingerprint.json, plans.json and one folder per configuration.
        memory_gb: training memory budget in GB; default 24 with a CUDA GPU, else 4.
        configurations: "2d", "3d" or both (``--configurations 2d 3d``); default all available.
        num_workers: processes working on cases in parallel.
        clean: recompute the fingerprint and redo every case.
        recipe: the denoiser training recipe: "default" (chosen by measurement) or "published" (the method as
            published).
    """
    from medseglatdiff.planning.pipeline import plan_and_preprocess as run

    result = run(
        dataset,
        out,
        memory_gb=memory_gb,
        configurations=_configurations(configurations, more_configurations),
        num_workers=num_workers,
        clean=clean,
        recipe=recipe,
    )
    print(f"fingerprint: {result['fingerprint']}" + ("" if result["fingerprint_computed"] else " (up to date)"))
    print(f"plans: {result['plans']}")
    for name, count in result["preprocessed"].items():
        removed = f", {count['removed']} removed (no longer in the raw dataset)" if count.get("removed") else ""
        print(f"{name}: {count['written']} cases written, {count['skipped']} up to date{removed}")
