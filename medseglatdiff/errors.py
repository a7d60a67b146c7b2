"""Exceptions that the CLI turns into a clear message and a non-zero exit code."""

from __future__ import annotations


class MedsegError(Exception):
    """Base class for user-facing errors: the message names the file and the fix."""


class DatasetFormatError(MedsegError):
    """A raw dataset (dataset.json and its folders) does not follow the documented format."""


class ImageReadError(MedsegError):
    """An image or mask file cannot be read."""
