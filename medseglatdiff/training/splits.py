"""Cross-validation folds of the training cases: ``splits_final.json`` (nnU-Net's format), grouped when known.

``splits_final.json`` is a list with one ``{"train": [...], "val": [...]}`` per fold. When the preprocessed
folder has none, five folds are created once and written atomically, so every later run (and every
stage of a run) sees the same split. Cases of one group (patient, video sequence) always land in the same
fold, so near-duplicates never leak between training and validation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupKFold, KFold

from medseglatdiff.errors import MedsegError
from medseglatdiff.io.atomic import write_json_atomic

SPLITS_FILE = "splits_final.json"


def make_splits(cases: Sequence[str], groups: Mapping[str, str] | None = None, num_folds: int = 5, seed: int = 12345) -> list[dict[str, list[str]]]:
    """``num_folds`` folds of ``cases`` (fewer when there are fewer cases or groups), grouped by ``groups``.

    Args:
        cases: case identifiers.
        groups: ``{case: group}``; cases without a group form their own group.
        num_folds: number of folds wanted.
        seed: shuffling seed.
    """
    cases = sorted(cases)
    if len(cases) < 2:
        raise MedsegError(f"{len(cases)} case(s): cross-validation needs at least 2 training cases")
    group_ids = [str((groups or {}).get(case, f"case:{case}")) for case in cases]
    folds = min(num_folds, len(set(group_ids)))
    if groups:
        splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        iterator = splitter.split(cases, groups=group_ids)
    else:
        iterator = KFold(n_splits=folds, shuffle=True, random_state=seed).split(cases)
    names = np.asarray(cases)
    return [{"train": sorted(names[train].tolist()), "val": sorted(names[val].tolist())} for train, val in iterator]


def load_or_create_splits(
    folder: str | os.PathLike, cases: Sequence[str], groups: Mapping[str, str] | None = None, num_folds: int = 5, seed: int = 12345
) -> list[dict[str, list[str]]]:
    """Read ``folder/splits_final.json``, or create it with :func:`make_splits` and write it atomically."""
    path = Path(folder) / SPLITS_FILE
    if path.is_file():
        try:
            splits = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise MedsegError(f"{path}: not valid JSON ({exc}); delete it to create new folds") from exc
        if not isinstance(splits, list) or not all(isinstance(f, dict) and "train" in f and "val" in f for f in splits):
            raise MedsegError(f"{path}: must be a list of {{\"train\": [...], \"val\": [...]}} folds; delete it to create new folds")
        return splits
    splits = make_splits(cases, groups, num_folds=num_folds, seed=seed)
    write_json_atomic(path, splits)
    return splits


def fold_cases(splits: Sequence[Mapping[str, Sequence[str]]], fold: int | str) -> tuple[list[str], list[str]]:
    """``(train, val)`` case lists of ``fold``; ``"all"`` trains on every case and validates on a few of them."""
    if fold == "all":
        every = sorted({c for f in splits for c in (*f["train"], *f["val"])})
        return every, every
    fold = int(fold)
    if not 0 <= fold < len(splits):
        raise MedsegError(f"fold {fold} does not exist: splits_final.json has folds 0..{len(splits) - 1} (or use fold 'all')")
    return list(splits[fold]["train"]), list(splits[fold]["val"])
