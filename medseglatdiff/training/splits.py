"""Cross-validation folds of the training cases: ``splits_final.json`` (nnU-Net's format), grouped when known.

``splits_final.json`` is a list with one ``{"train": [...], "val": [...]}`` per fold. When the preprocessed
folder has none, five folds are created once with scikit-learn and written atomically, so every later run (and
every stage of a run) sees the same split. An existing file is always respected; a file of your own is
installed with :func:`install_splits` (``medseg cv --splits FILE``) after :func:`validate_splits` checked it.

How folds are made (:func:`make_splits`, seeded):

- groups known (LIDC patient, CVC video sequence) and cases of both kinds "empty" / "non-empty foreground":
  ``StratifiedGroupKFold``: a group never straddles folds and each fold gets its share of empty cases;
- groups known: ``GroupKFold``;
- no groups: ``StratifiedKFold`` on the same strata when there are two kinds, else ``KFold``.

Cases of one group always land in the same fold, so near-duplicates never leak between training and validation.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

from medseglatdiff.errors import MedsegError
from medseglatdiff.io.atomic import write_json_atomic
from medseglatdiff.io.json_files import read_json

logger = logging.getLogger(__name__)

SPLITS_FILE = "splits_final.json"
SPLITS_FORMAT = 'a JSON list with one {"train": [case, ...], "val": [case, ...]} object per fold'


class SplitsError(MedsegError):
    """A splits file is malformed or does not fit the dataset (the message lists every problem)."""


def _splitter(num_folds: int, seed: int, grouped: bool, stratified: bool) -> Any:
    if grouped and stratified:
        return StratifiedGroupKFold(n_splits=num_folds, shuffle=True, random_state=seed)
    if grouped:
        return GroupKFold(n_splits=num_folds, shuffle=True, random_state=seed)
    if stratified:
        return StratifiedKFold(n_splits=num_folds, shuffle=True, random_state=seed)
    return KFold(n_splits=num_folds, shuffle=True, random_state=seed)


def splitting_method(groups: Mapping[str, str] | None, strata: Mapping[str, Any] | None) -> str:
    """The scikit-learn splitter :func:`make_splits` uses for these groups and strata (for reports)."""
    stratified = bool(strata) and len(set(strata.values())) > 1
    return type(_splitter(2, 0, bool(groups), stratified)).__name__


def make_splits(
    cases: Sequence[str],
    groups: Mapping[str, str] | None = None,
    num_folds: int = 5,
    seed: int = 12345,
    strata: Mapping[str, Any] | None = None,
) -> list[dict[str, list[str]]]:
    """``num_folds`` folds of ``cases`` (fewer when there are fewer cases or groups), grouped and stratified.

    Args:
        cases: case identifiers.
        groups: ``{case: group}``; cases without a group form their own group.
        num_folds: number of folds wanted.
        seed: shuffling seed (the same seed gives the same folds).
        strata: ``{case: stratum}``, e.g. whether the case has foreground; folds keep the strata's proportions
            as far as the groups allow. Ignored when every case has the same stratum.
    """
    cases = sorted(cases)
    if len(cases) < 2:
        raise MedsegError(f"{len(cases)} case(s): cross-validation needs at least 2 training cases")
    if isinstance(num_folds, bool) or int(num_folds) < 2:
        raise MedsegError(f"num_folds {num_folds!r}: cross-validation needs at least 2 folds")
    group_ids = [str((groups or {}).get(case, f"case:{case}")) for case in cases]
    labels = [str((strata or {}).get(case, "")) for case in cases]
    folds = min(int(num_folds), len(set(group_ids)))
    stratified = len(set(labels)) > 1
    names = np.asarray(cases)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        extra = {"groups": group_ids} if groups else {}
        result = list(_splitter(folds, seed, bool(groups), stratified).split(names, labels, **extra))
    if any(len(val) == 0 for _, val in result):  # stratifying few groups can leave a fold empty
        result = list(_splitter(folds, seed, bool(groups), False).split(names, labels, **extra))
    return [{"train": sorted(names[train].tolist()), "val": sorted(names[val].tolist())} for train, val in result]


def _check_structure(splits: Any, where: str) -> list[dict[str, list[str]]]:
    if not isinstance(splits, list) or not splits:
        raise SplitsError(f"{where}: must be {SPLITS_FORMAT}")
    problems = []
    for k, fold in enumerate(splits):
        if not isinstance(fold, dict) or not {"train", "val"} <= set(fold):
            problems.append(f"fold {k} is not an object with 'train' and 'val' lists")
        elif not all(
            isinstance(fold[key], list) and all(isinstance(c, str) for c in fold[key]) for key in ("train", "val")
        ):
            problems.append(f"fold {k}: 'train' and 'val' must be lists of case identifiers (strings)")
    if problems:
        raise SplitsError(f"{where}: " + "; ".join(problems) + f"; the file must be {SPLITS_FORMAT}")
    return [{"train": list(f["train"]), "val": list(f["val"])} for f in splits]


def read_splits(path: str | os.PathLike) -> list[dict[str, list[str]]]:
    """Read a splits file and check its structure (not its cases: see :func:`validate_splits`)."""
    path = Path(path)
    splits = read_json(
        path,
        fix="fix it, or delete it to create new folds",
        missing=f"splits file not found; it must be {SPLITS_FORMAT}",
        error=SplitsError,
    )
    return _check_structure(splits, str(path))


def validate_splits(
    splits: Sequence[Mapping[str, Sequence[str]]],
    cases: Sequence[str],
    groups: Mapping[str, str] | None = None,
    where: str = SPLITS_FILE,
) -> list[str]:
    """Check folds against the dataset; raise :class:`SplitsError` listing every problem at once.

    Problems: unknown cases, a case listed twice in one fold, a case in training and validation of one fold,
    a case validated in two folds, a group (patient) in training and validation of one fold or validated in
    two folds.

    Returns:
        Warnings that do not stop a run: known cases that no fold validates (a partial cross-validation).
    """
    known = set(cases)
    problems: list[str] = []
    validated: dict[str, int] = {}
    group_folds: dict[str, set[int]] = {}
    for k, fold in enumerate(splits):
        train, val = list(fold["train"]), list(fold["val"])
        unknown = sorted((set(train) | set(val)) - known)
        if unknown:
            problems.append(
                f"fold {k} names {len(unknown)} case(s) that are not preprocessed: {', '.join(unknown[:5])}"
            )
        for key, names in (("train", train), ("val", val)):
            duplicates = sorted({c for c in names if names.count(c) > 1})
            if duplicates:
                problems.append(f"fold {k} lists {', '.join(duplicates[:5])} twice in '{key}'")
        if not val:
            problems.append(f"fold {k} has no validation case")
        both = sorted(set(train) & set(val))
        if both:
            problems.append(f"fold {k} has {', '.join(both[:5])} in both 'train' and 'val'")
        for case in val:
            if case in validated and validated[case] != k:
                problems.append(f"case {case} is validated in folds {validated[case]} and {k}")
            validated.setdefault(case, k)
        for case in val:
            if groups and case in groups:
                group_folds.setdefault(groups[case], set()).add(k)
        if groups:
            leaked = sorted({groups[c] for c in train if c in groups} & {groups[c] for c in val if c in groups})
            if leaked:
                problems.append(
                    f"fold {k} has group(s) {', '.join(leaked[:5])} in both 'train' and 'val' "
                    "(e.g. one patient's slices)"
                )
    split_groups = sorted(g for g, f in group_folds.items() if len(f) > 1)
    if split_groups:
        problems.append(
            f"group(s) {', '.join(split_groups[:5])} are validated in several folds "
            "(one patient's cases must share a fold)"
        )
    if problems:
        raise SplitsError(f"{where}: " + "; ".join(problems) + "; fix the file, or delete it to create grouped folds")
    unvalidated = sorted(known - set(validated))
    return (
        [f"{where}: {len(unvalidated)} case(s) are validated in no fold (e.g. {', '.join(unvalidated[:3])})"]
        if unvalidated
        else []
    )


def load_or_create_splits(
    folder: str | os.PathLike,
    cases: Sequence[str],
    groups: Mapping[str, str] | None = None,
    num_folds: int = 5,
    seed: int = 12345,
    strata: Mapping[str, Any] | None = None,
) -> list[dict[str, list[str]]]:
    """Read ``folder/splits_final.json``, or create it with :func:`make_splits` and write it atomically."""
    path = Path(folder) / SPLITS_FILE
    if path.is_file():
        return read_splits(path)
    splits = make_splits(cases, groups, num_folds=num_folds, seed=seed, strata=strata)
    write_json_atomic(path, splits)
    logger.info("wrote %s: %d folds (%s, seed %d)", path, len(splits), splitting_method(groups, strata), seed)
    return splits


def install_splits(
    folder: str | os.PathLike, source: str | os.PathLike, cases: Sequence[str], groups: Mapping[str, str] | None = None
) -> list[dict[str, list[str]]]:
    """Validate a user's splits file and make it ``folder/splits_final.json`` (atomically).

    Raises:
        SplitsError: the file is malformed or does not fit the cases (every problem listed), or a different
            ``splits_final.json`` is already in ``folder`` (folds trained on it would no longer match).
    """
    source = Path(source)
    splits = read_splits(source)
    for warning in validate_splits(splits, cases, groups, str(source)):
        logger.warning(warning)
    target = Path(folder) / SPLITS_FILE
    if target.is_file() and target.resolve() != source.resolve():
        existing = read_splits(target)
        if existing != splits:
            raise SplitsError(
                f"{target}: already holds other folds than {source} (folds may have been trained on them); "
                f"delete {target} and WORK/results/... of those folds to use {source}"
            )
    if not target.is_file():
        write_json_atomic(target, splits)
        logger.info("installed %s as %s (%d folds)", source, target, len(splits))
    return splits


def fold_cases(splits: Sequence[Mapping[str, Sequence[str]]], fold: int | str) -> tuple[list[str], list[str]]:
    """``(train, val)`` case lists of ``fold``; ``"all"`` trains on every case and validates on a few of them."""
    if fold == "all":
        every = sorted({c for f in splits for c in (*f["train"], *f["val"])})
        return every, every
    fold = int(fold)
    if not 0 <= fold < len(splits):
        raise MedsegError(
            f"fold {fold} does not exist: splits_final.json has folds 0..{len(splits) - 1} (or use fold 'all')"
        )
    return list(splits[fold]["train"]), list(splits[fold]["val"])
