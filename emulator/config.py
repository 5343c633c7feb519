"""A Chalice stage's settings from ``.chalice/config.json``, for processes Chalice did not start."""

import json
from pathlib import Path

from emulator.template import ROOT

CONFIG = ROOT / ".chalice" / "config.json"


def stage_environment(stage: str, path: Path = CONFIG) -> dict[str, str]:
    """The stage's ``environment_variables``, as Lambda (and ``chalice local``) would set them."""
    config = json.loads(path.read_text())
    stages = config["stages"]
    if stage not in stages:
        raise KeyError(f"no stage {stage!r} in {path} (stages: {', '.join(stages)})")
    return {
        **config.get("environment_variables", {}),
        **stages[stage].get("environment_variables", {}),
    }
