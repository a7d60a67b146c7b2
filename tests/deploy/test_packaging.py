"""The files ``monai-deploy package`` reads: app.yaml and a requirements.txt that covers the package's dependencies."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "medseglatdiff" / "deploy"
SETUP_CFG = Path(__file__).resolve().parents[2] / "setup.cfg"


def _names(lines: list[str]) -> set[str]:
    names = set()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower())
    return names


def test_requirements_cover_the_run_time_dependencies() -> None:
    setup = configparser.ConfigParser()
    setup.read(SETUP_CFG)
    install = _names(setup["options"]["install_requires"].splitlines())
    deploy = _names(setup["options.extras_require"]["deploy"].splitlines())
    requirements = _names((DEPLOY / "requirements.txt").read_text().splitlines())
    assert install <= requirements, f"add to medseglatdiff/deploy/requirements.txt: {sorted(install - requirements)}"
    assert {"highdicom", "pydicom"} <= requirements and "monai-deploy-app-sdk" in deploy


def test_app_yaml_describes_a_file_in_file_out_application() -> None:
    config = yaml.safe_load((DEPLOY / "app.yaml").read_text())
    assert config["application"]["inputFormats"] == ["file"] and config["application"]["outputFormats"] == ["file"]
    assert config["application"]["version"] and {"cpu", "memory"} <= set(config["resources"])
    assert (
        DEPLOY / "__main__.py"
    ).is_file()  # the package's application folder: `monai-deploy package medseglatdiff/deploy`
