"""How the commands report a user's mistake: one line, ``error: ...``, and exit status 2."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

from medseglatdiff.errors import MedsegError


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command, turning a user error (MedsegError), a system error (OSError) or MemoryError into one
    ``error: ...`` line on stderr and exit status 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MedsegError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        except OSError as exc:  # a full disk, a missing permission, a vanished file: the system's own words
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
            raise SystemExit(2) from None
        except MemoryError:
            print(
                "error: out of memory; plan with less memory (medseg plan_and_preprocess --memory_gb G), lower the "
                "batch size, or predict fewer samples at once",
                file=sys.stderr,
            )
            raise SystemExit(2) from None

    return wrapper
