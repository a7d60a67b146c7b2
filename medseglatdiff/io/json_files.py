"""Reading the project's JSON files with one clear error per way they can be wrong."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from medseglatdiff.errors import MedsegError


def read_json(
    path: str | os.PathLike,
    fix: str,
    missing: str | None = None,
    error: type[MedsegError] = MedsegError,
    require_object: bool = False,
) -> Any:
    """Parse ``path``; a missing file, invalid JSON or (with ``require_object``) a non-object raises ``error``.

    Args:
        path: the JSON file.
        fix: what the user should do when the file is not valid JSON (or not an object).
        missing: the message tail for a missing file; None: the file is expected to exist (no check here).
        error: the :class:`MedsegError` subclass to raise.
        require_object: the top level must be a JSON object.
    """
    path = Path(path)
    if missing is not None and not path.is_file():
        raise error(f"{path}: {missing}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid JSON ({exc}){'; ' + fix if fix else ''}") from exc
    if require_object and not isinstance(data, dict):
        raise error(f"{path}: must hold a JSON object{'; ' + fix if fix else ''}")
    return data
