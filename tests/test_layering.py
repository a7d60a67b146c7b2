"""Data flows one way through the stages: no package imports a later stage of the pipeline."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "medseglatdiff"
# The pipeline's order; a package may import itself and the ones before it.
ORDER = [
    "errors", "resources", "io", "datasets", "planning", "preprocessing", "augmentation", "networks", "losses",
    "engines", "training", "postprocessing", "inference", "evaluation", "crossval", "export", "deploy",
]  # fmt: skip
TOP = {"cli", "demo", "bundle_command", "__init__", "__main__"}  # entry points: may import anything
# Known arrows that still run backwards, each with its reason; the test fails on any other (and on a fixed one
# left in this list, so the list only shrinks).
KNOWN = {
    "planning/fingerprint.py -> preprocessing": "reads raw cases with preprocessing.case_io and its cropping",
    "planning/planner.py -> preprocessing": "the resampling rules (anisotropy threshold, new shape)",
    "planning/pipeline.py -> preprocessing": "plan_and_preprocess runs both stages (a command, not a stage)",
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "medseglatdiff" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_no_stage_imports_a_later_one() -> None:
    backward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if own in TOP:
            continue
        assert own in ORDER, f"{own}: add it to ORDER in this test"
        for imported in _imports(path) - TOP:
            if imported in ORDER and ORDER.index(imported) > ORDER.index(own):
                backward.append(f"{path.relative_to(PACKAGE)} -> {imported}")
    assert sorted(set(backward) - set(KNOWN)) == [], "imports of a later stage"
    assert sorted(set(KNOWN) - set(backward)) == [], "fixed: remove from KNOWN"
