"""`make demo`: the main job end to end on the embedded default data.

Today: generate the demo dataset -> verify it -> plan and preprocess. Each later stage of the pipeline
(train, predict with confidence maps, evaluate) is appended here as it lands.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def run_demo(out: str | Path, num_cases: int = 24, seed: int = 0) -> Path:
    """Run every available pipeline stage on freshly generated demo data under ``out``; return ``out``."""
    from medseglatdiff.datasets.demo_data import generate_demo_dataset
    from medseglatdiff.datasets.verify import verify_dataset
    from medseglatdiff.errors import MedsegError

    out = Path(out)
    raw = out / "raw" / "Dataset001_Demo"
    started = time.perf_counter()

    print(f"[1] demo data -> {raw}")
    spec = generate_demo_dataset(raw, num_cases=num_cases, seed=seed, overwrite=True)
    print(f"    {spec.num_training} cases, {spec.num_raters} raters each, {len(set(spec.case_groups.values()))} patients")

    print("[2] verify_dataset")
    report = verify_dataset(raw, progress=False)
    print("    " + report.format().replace("\n", "\n    "))
    if not report.ok:
        raise MedsegError(f"the demo dataset failed verification:\n{report.format()}")

    stages = _later_stages()
    for number, (title, stage) in enumerate(stages, start=3):
        print(f"[{number}] {title}")
        stage(raw, out)

    print(f"done in {time.perf_counter() - started:.1f} s; look in {out.resolve()}")
    return out


def _later_stages() -> list:
    """Pipeline stages after verification that this version of the package provides."""
    stages = []
    try:
        from medseglatdiff.planning.run import plan_and_preprocess
    except ImportError:
        return stages

    def plan_stage(raw: Path, out: Path) -> None:
        plan_and_preprocess(dataset=raw, out=out / "work" / "Dataset001_Demo", clean=True)
        print(f"    plans: {out / 'work' / 'Dataset001_Demo' / 'plans.json'}")

    stages.append(("plan_and_preprocess", plan_stage))
    return stages


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="demo_output", help="folder for every demo artefact")
    parser.add_argument("--num_cases", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from medseglatdiff.errors import MedsegError

    try:
        run_demo(args.out, num_cases=args.num_cases, seed=args.seed)
    except MedsegError as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
