"""Files shipped inside the package: the shared bundle configs, the four bundles and the licence.

They are package data (``setup.cfg``), so a wheel install finds them exactly as a clone does; the
repository's top-level ``bundles/`` is a link to :func:`bundles_dir` for the bundle card's command.
"""

from __future__ import annotations

from pathlib import Path

from medseglatdiff.errors import MedsegError


def package_dir() -> Path:
    """The installed ``medseglatdiff`` folder."""
    return Path(__file__).resolve().parent


def configs_dir() -> Path:
    """The shared bundle definitions (``train.json`` and its overlays)."""
    return _existing(package_dir() / "configs")


def bundles_dir() -> Path:
    """The folder holding one sub-folder per shipped bundle (isic, cvc, lidc, brats)."""
    return _existing(package_dir() / "bundles")


def bundle_names(config: str = "train.json") -> list[str]:
    """Names of the shipped bundles that have ``config``."""
    return sorted(p.name for p in bundles_dir().iterdir() if (p / config).is_file())


def license_text() -> str:
    """The project's licence (Apache-2.0), shipped with every exported bundle."""
    return (_existing(package_dir() / "LICENSE")).read_text(encoding="utf-8")


def _existing(path: Path) -> Path:
    if not path.exists():
        raise MedsegError(
            f"{path}: missing from the installed package; "
            "reinstall medseglatdiff (pip install --force-reinstall medseglatdiff)"
        )
    return path
