"""Reading ``.pt`` files (checkpoints, trained weights) with one clear error for a broken file."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from medseglatdiff.errors import MedsegError

# What torch.load raises for a truncated, non-zip or otherwise damaged file.
BROKEN_FILE_ERRORS = (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile)


class BrokenFileError(MedsegError):
    """A ``.pt`` file exists but cannot be read (truncated, not a torch file, damaged)."""


def load_torch_file(path: str | os.PathLike, fix: str, map_location: str | torch.device | None = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; a damaged file raises :class:`BrokenFileError` naming it and ``fix``."""
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except BROKEN_FILE_ERRORS as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BrokenFileError(f"{path}: unreadable ({reason[:160]}); {fix}") from exc


def readable_torch_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` looks like a complete torch file: a zip with its central directory (what ``torch.save``
    writes). Cheap (the file's end is read, nothing unpickled); catches a truncated or non-torch file.
    """
    path = Path(path)
    return path.is_file() and zipfile.is_zipfile(path)
