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
