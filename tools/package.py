"""``make package``: one CloudFormation template for AWS, from Chalice and ``infra/``.

``chalice package`` takes one ``--merge-template`` file, so this merges ``infra/template.yaml``
(the stateful resources), ``infra/functions.yaml`` (roles, event sources and settings of
the generated functions) and ``infra/operations.yaml`` (alerts and alarms) into
``build/merge.json`` first, then runs
``chalice package --stage dev --merge-template build/merge.json build/package``, and adds what
follows from the packaged resources (``tools/derived.py``: per-function and per-table alarms,
log groups). The result is ``build/package/sam.json`` and ``build/package/deployment.zip``.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from emulator.template import ROOT, load
from tools import derived

INFRA = ROOT / "infra"
BUILD = ROOT / "build"
STAGE = "dev"


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Chalice's merge rule: dictionaries merge key by key; anything else is replaced."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def merge_template() -> Path:
    merged = load(INFRA / "template.yaml")
    for extra in ("functions.yaml", "operations.yaml"):
        merged = deep_merge(merged, load(INFRA / extra))
    BUILD.mkdir(exist_ok=True)
    path = BUILD / "merge.json"
    path.write_text(json.dumps(merged, indent=2) + "\n")
    return path


def package(output: Path = BUILD / "package") -> Path:
    """Build the deployable template and zip; the template's path."""
    merge = merge_template()
    environment = {
        **os.environ,
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    }
    environment.pop("AWS_ENDPOINT_URL", None)
    subprocess.run(  # noqa: S603 (our own interpreter's chalice, fixed arguments)
        [
            str(Path(sys.executable).parent / "chalice"),
            "package",
            "--stage",
            STAGE,
            "--merge-template",
            str(merge),
            str(output),
        ],
        cwd=ROOT,
        env=environment,
        check=True,
    )
    template = output / "sam.json"
    completed = derived.complete(json.loads(template.read_text()))
    template.write_text(json.dumps(completed, indent=2) + "\n")
    return template


if __name__ == "__main__":
    print(package())
