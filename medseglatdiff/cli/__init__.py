"""The ``medseg`` command line: a thin `fire <https://github.com/google/python-fire>`_ layer.

Every command is a plain Python function elsewhere in the package; the wrappers (one module per group:
:mod:`~medseglatdiff.cli.data`, :mod:`~medseglatdiff.cli.planning`, :mod:`~medseglatdiff.cli.training`,
:mod:`~medseglatdiff.cli.inference`) only turn results into printed summaries and exit codes. Errors meant for
the user (:class:`MedsegError`) and known system errors (``OSError``: disk full, permission denied;
``MemoryError``) print one line, ``error: ...``, and exit with status 2 (:mod:`~medseglatdiff.cli.errors`); a
failed verification exits with status 1.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from medseglatdiff.cli.data import convert, demo, demo_data, verify_dataset
from medseglatdiff.cli.inference import evaluate, export, predict
from medseglatdiff.cli.planning import extract_fingerprint, plan, plan_and_preprocess, preprocess
from medseglatdiff.cli.training import cv, find_best_configuration, train

__all__ = [
    "commands",
    "convert",
    "cv",
    "demo",
    "demo_data",
    "evaluate",
    "export",
    "extract_fingerprint",
    "find_best_configuration",
    "help_as_fire_flag",
    "main",
    "plan",
    "plan_and_preprocess",
    "predict",
    "preprocess",
    "train",
    "verify_dataset",
]


def commands() -> dict[str, Callable[..., Any]]:
    """The CLI's commands by name."""
    return {
        "convert": convert,
        "verify_dataset": verify_dataset,
        "demo_data": demo_data,
        "demo": demo,
        "extract_fingerprint": extract_fingerprint,
        "plan": plan,
        "preprocess": preprocess,
        "plan_and_preprocess": plan_and_preprocess,
        "train": train,
        "predict": predict,
        "evaluate": evaluate,
        "cv": cv,
        "find_best_configuration": find_best_configuration,
        "export": export,
    }


HELP_FLAGS = ("--help", "-h")


def help_as_fire_flag(argv: list[str]) -> list[str]:
    """``medseg CMD ... --help`` -> ``medseg CMD -- --help``.

    Fire hands ``--help`` to a command that takes ``**kwargs`` (train, cv, ...) as one more keyword and then
    fails on the missing required ones; after ``--`` it is fire's own flag and shows the help.
    """
    head = argv[: argv.index("--")] if "--" in argv else argv
    if not any(flag in head for flag in HELP_FLAGS):
        return argv
    words = [word for word in head if word not in HELP_FLAGS]
    return [*words[:1], "--", "--help"]


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``medseg`` console script."""
    import warnings

    import fire

    # `import monai` imports Holoscan when the deploy extra is installed, which warns about the shell's stack size;
    # that matters to the MONAI Deploy app (python -m medseglatdiff.deploy, which keeps the warning), not here
    warnings.filterwarnings("ignore", message="Current stack size", category=RuntimeWarning)

    fire.Fire(commands(), command=help_as_fire_flag(sys.argv[1:] if argv is None else list(argv)), name="medseg")
