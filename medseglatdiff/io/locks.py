"""A lock file per work folder, so two runs never write the same files at once.

``plan_and_preprocess`` locks the work folder, ``train`` its fold folder and ``predict`` its output folder. The
lock file names its holder (process id, host, command, start time); a second run stops with that in its message.
A lock left by a process that no longer runs on this host (a crash, a kill) is taken over with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from medseglatdiff.errors import MedsegError

logger = logging.getLogger(__name__)


def _holder() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else "python",
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _read(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return content if isinstance(content, dict) else {}


def _gone(holder: dict[str, Any]) -> bool:
    """Whether the holding process certainly no longer runs (same host, no such process)."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's live process
        return False
    return False


@contextmanager
def folder_lock(folder: str | os.PathLike, what: str) -> Iterator[Path]:
    """Hold ``folder/.medseglatdiff.lock`` while the block runs; another holder alive is a :class:`MedsegError`.

    Args:
        folder: the folder written by the block (created when missing).
        what: the kind of run, for the messages ("training", "predict", ...).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".medseglatdiff.lock"
    me = _holder()
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            other = _read(path)
            if other.get("pid") == me["pid"] and other.get("host") == me["host"]:
                yield path  # this process holds it already (a command that runs another one)
                return
            if other and not _gone(other):
                raise MedsegError(
                    f"{folder}: another {what} is running on it (pid {other.get('pid')} on {other.get('host')}, "
                    f"since {other.get('started')}: {other.get('command')}); wait for it to finish, or delete "
                    f"{path} if that process is gone"
                ) from None
            if not other and time.time() - _mtime(path) < 5:  # being written by its holder right now
                time.sleep(0.5)
                continue
            logger.warning("%s: taking over the lock of a %s that no longer runs (%s)", folder, what, other or "empty")
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(me, handle)
        break
    else:
        raise MedsegError(f"{path}: cannot take the lock; delete it if no other {what} runs on {folder}")
    try:
        yield path
    finally:
        if _read(path).get("pid") == me["pid"]:
            path.unlink(missing_ok=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
