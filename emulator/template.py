"""Reading the CloudFormation template under ``infra/`` (short-form tags included)."""

import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"
FUNCTIONS = ROOT / "infra" / "functions.yaml"


class _Loader(yaml.SafeLoader):
    """A YAML loader that reads ``!Ref X`` as ``{"Ref": X}`` and ``!Fn X`` as ``{"Fn::Fn": X}``."""


def _intrinsic(loader: _Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _intrinsic)


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    document: dict[str, Any] = yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506
    return document


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical: resource
        for logical, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def event_filters(path: Path = FUNCTIONS) -> dict[str, list[dict[str, Any]]]:
    """Each function's event-source filter patterns (``FilterCriteria``), by logical id.

    What Lambda applies on AWS, read from the same template, so the local runner applies it too.
    """
    filters: dict[str, list[dict[str, Any]]] = {}
    for logical, resource in load(path)["Resources"].items():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            criteria = event.get("Properties", {}).get("FilterCriteria")
            if criteria:
                patterns = [json.loads(f["Pattern"]) for f in criteria["Filters"]]
                filters.setdefault(logical, []).extend(patterns)
    return filters
