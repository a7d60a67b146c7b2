"""A work folder knows its data: stale cases go, another dataset is refused, and a lock stops a second run."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from medseglatdiff.datasets.demo_data import generate_demo_dataset
from medseglatdiff.errors import MedsegError
from medseglatdiff.io.locks import folder_lock
from medseglatdiff.planning.pipeline import plan_and_preprocess


def _remove_case(raw: Path, case: str) -> None:
    """Delete one case from a raw dataset (its image, label and rater files) and fix numTraining."""
    for path in raw.rglob(f"{case}*"):
        path.unlink()
    spec = json.loads((raw / "dataset.json").read_text())
    spec["numTraining"] -= 1
    spec.get("case_groups", {}).pop(case, None)
    (raw / "dataset.json").write_text(json.dumps(spec))


def test_cases_removed_from_the_raw_dataset_leave_the_work_folder(tmp_path: Path) -> None:
    spec = generate_demo_dataset(tmp_path / "raw", num_cases=6)
    first = plan_and_preprocess(tmp_path / "raw", tmp_path / "work", progress=False)
    data = (
        tmp_path
        / "work"
        / json.loads((tmp_path / "work" / "plans.json").read_text())["configurations"]["2d"]["data_folder"]
    )
    assert first["preprocessed"]["2d"] == {"written": 6, "skipped": 0, "removed": 0}
    gone = spec.case_ids()[-1]
    _remove_case(tmp_path / "raw", gone)
    again = plan_and_preprocess(tmp_path / "raw", tmp_path / "work", progress=False)
    assert again["preprocessed"]["2d"]["removed"] == 1
    assert not (data / f"{gone}.npz").exists() and not (data / f"{gone}.json").exists()
    assert len(list(data.glob("*.npz"))) == 5


def test_a_work_folder_of_another_dataset_is_refused_unless_clean(tmp_path: Path) -> None:
    generate_demo_dataset(tmp_path / "a", num_cases=4, seed=0)
    generate_demo_dataset(tmp_path / "b", num_cases=4, seed=1)
    plan_and_preprocess(tmp_path / "a", tmp_path / "work", progress=False)
    (tmp_path / "work" / "splits_final.json").write_text("[]")
    with pytest.raises(MedsegError, match=r"work: planned from .*a, not .*b; .*pass --clean"):
        plan_and_preprocess(tmp_path / "b", tmp_path / "work", progress=False)
    result = plan_and_preprocess(tmp_path / "b", tmp_path / "work", clean=True, progress=False)
    assert result["preprocessed"]["2d"]["written"] == 4
    assert json.loads((tmp_path / "work" / "plans.json").read_text())["raw_dataset"] == str((tmp_path / "b").resolve())
    assert not (tmp_path / "work" / "splits_final.json").exists(), "the other dataset's splits were kept"
    shutil.move(tmp_path / "b", tmp_path / "b_moved")  # the same dataset, moved: not another one
    assert (
        plan_and_preprocess(tmp_path / "b_moved", tmp_path / "work", progress=False)["preprocessed"]["2d"]["skipped"]
        == 4
    )


def test_a_second_run_on_a_locked_folder_names_the_holder(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = tmp_path / "work" / ".medseglatdiff.lock"
        lock.parent.mkdir()
        lock.write_text(
            json.dumps(
                {
                    "pid": holder.pid,
                    "host": socket.gethostname(),
                    "command": "medseg train w",
                    "started": "2026-12-01 10:00:00",
                }
            )
        )
        with pytest.raises(
            MedsegError, match=rf"another training is running on it \(pid {holder.pid} .*medseg train w"
        ):
            with folder_lock(tmp_path / "work", "training"):
                pass
    finally:
        holder.kill()
        holder.wait()
    with folder_lock(tmp_path / "work", "training") as taken:  # its holder is gone: taken over
        assert json.loads(taken.read_text())["pid"] == os.getpid()
        with folder_lock(tmp_path / "work", "training"):  # the same process may nest
            pass
        assert taken.is_file()
    assert not lock.exists()
