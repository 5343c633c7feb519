"""The packaged template's stateful part, deployed into moto, runs the whole pipeline.

What AWS would create from ``make package`` (tables, topic, key, queues, subscriptions,
bucket), minus the functions and the API, which the runner and the test client play.
"""

import json
import re
from pathlib import Path
from typing import Any

import pytest

from emulator import stack
from emulator.runner import EventSourceRunner
from functions import aws
from tests.conftest import Api
from tests.e2e import test_seed_scenario as seed
from tests.helpers import PREFIX

CODE = ("AWS::Serverless::", "AWS::Lambda::", "AWS::IAM::", "AWS::ApiGateway::")


def stateful_part(template: dict[str, Any]) -> dict[str, Any]:
    """The template without the code, without the alerts (a conditional topic and its e-mail
    subscription), and without what refers to either (log groups, alarms)."""
    resources = {
        name: resource
        for name, resource in template["Resources"].items()
        if not resource["Type"].startswith(CODE) and "Condition" not in resource
    }
    while dangling := [
        name
        for name, resource in resources.items()
        if not references(resource)
        <= set(resources)
        | set(template.get("Parameters", {}))
        | {"AWS", "AWS::Partition", "AWS::Region", "AWS::AccountId", "AWS::StackName"}
    ]:
        for name in dangling:
            del resources[name]
    outputs = {
        name: output
        for name, output in template.get("Outputs", {}).items()
        if references(output) <= set(resources)
    }
    return {**template, "Resources": resources, "Outputs": outputs}


def references(value: Any) -> set[str]:
    """The logical ids that ``Ref`` and ``Fn::GetAtt`` name anywhere in ``value``."""
    if isinstance(value, str):
        return set(re.findall(r"\$\{(\w+)", value))  # names inside an Fn::Sub string
    if isinstance(value, dict):
        if "Ref" in value:
            return {value["Ref"]}
        if "Fn::GetAtt" in value:
            return {value["Fn::GetAtt"][0]}
        return set().union(*(references(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(references(v) for v in value)) if value else set()
    return set()


@pytest.fixture(scope="module")
def packaged_template(packaged: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(packaged.read_text())
    return document


@pytest.fixture
def deployed(moto: None, packaged_template: dict[str, Any]) -> stack.Stack:
    """Overrides tests/conftest.py's: the stack comes from the packaged template."""
    part = stateful_part(packaged_template)
    assert "EventsTopic" in part["Resources"]
    assert "APIHandler" not in part["Resources"]
    return stack.deploy(aws.client, PREFIX, template=part)


def test_seed_scenario_on_the_packaged_stack(api: Api, runner: EventSourceRunner) -> None:
    seed.test_seed_scenario_converges_through_every_hop(api, runner)
