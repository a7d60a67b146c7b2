"""Exceptions that the CLI turns into a clear message and a non-zero exit code."""

from __future__ import annotations


class MedsegError(Exception):
    """Base class for user-facing errors: the message names the file and the fix."""


class DatasetFormatError(MedsegError):
    """A raw dataset (dataset.json and its folders) does not follow the documented format.

    Attributes:
        problems: each problem on its own (the message joins them), so callers can list them separately.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems) if problems else [message]


class ImageReadError(MedsegError):
    """An image or mask file cannot be read."""


class BundleCommandError(SystemExit):
    """A user error inside a ``monai.bundle run``: exits with ``error: <message>`` and status 1, no traceback.

    MONAI wraps any ``Exception`` raised by a config expression in a ``RuntimeError`` (and prints the chain);
    a ``SystemExit`` passes through, so bundle entry points raise this instead.
    """

    def __init__(self, error: MedsegError) -> None:
        super().__init__(f"error: {error}")
        self.error = error


def user_error(exc: BaseException) -> MedsegError | None:
    """The :class:`MedsegError` behind ``exc`` (MONAI wraps errors of config expressions), or None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, MedsegError):
            return current
        if isinstance(current, BundleCommandError):
            return current.error
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
