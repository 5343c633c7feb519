"""Deploy ``infra/template.yaml`` into moto, and bridge what moto's CloudFormation skips.

moto creates the tables, topic and queues of the template but skips ``AWS::SNS::Subscription``
(with only a warning), ignores a table's ``TimeToLiveSpecification`` and does not enforce
``AWS::SQS::QueuePolicy``. ``subscribe`` creates each subscription of the template, with its
filter policy and raw delivery, and ``enable_ttl`` each table's TTL, from the template itself,
so there is still one source of truth.
"""

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from emulator.runner import ClientFactory
from emulator.template import load, resources_of_type


@dataclass(frozen=True)
class Stack:
    name: str
    outputs: dict[str, str]
    physical_ids: dict[str, str]
    """Physical id by logical id (an ARN for a topic, a URL for a queue, a name for a table)."""


def deploy(
    client: ClientFactory,
    prefix: str,
    parameters: dict[str, str] | None = None,
    template: dict[str, Any] | None = None,
) -> Stack:
    """Create the stack named ``prefix`` (from ``infra/`` by default), with its subscriptions."""
    document = load() if template is None else template
    cfn = client("cloudformation")
    values = {"Prefix": prefix, **(parameters or {})}
    with _quiet_moto():  # moto parses the template again when describing the stack
        cfn.create_stack(
            StackName=prefix,
            TemplateBody=json.dumps(document),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
        )
        stack = describe(client, prefix)
    for logical_id in resources_of_type(document, "AWS::SNS::Subscription"):
        subscribe(client, stack, logical_id, document)
    enable_ttl(client, stack, document)
    return stack


def enable_ttl(client: ClientFactory, stack: Stack, template: dict[str, Any]) -> list[str]:
    """Turn on each table's TTL as the template specifies it; the tables it turned on."""
    enabled = []
    for logical_id in resources_of_type(template, "AWS::DynamoDB::Table"):
        ttl = template["Resources"][logical_id]["Properties"].get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            table = stack.physical_ids[logical_id]
            client("dynamodb").update_time_to_live(
                TableName=table,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
            enabled.append(table)
    return enabled


@contextlib.contextmanager
def _quiet_moto() -> Iterator[None]:
    """Hide moto's warnings about the resource types that ``subscribe`` bridges."""
    moto_logger = logging.getLogger("moto")
    level = moto_logger.level
    moto_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Tried to parse AWS", UserWarning)
            yield
    finally:
        moto_logger.setLevel(level)


def describe(client: ClientFactory, name: str) -> Stack:
    cfn = client("cloudformation")
    description = cfn.describe_stacks(StackName=name)["Stacks"][0]
    resources = cfn.describe_stack_resources(StackName=name)["StackResources"]
    return Stack(
        name=name,
        outputs={o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])},
        physical_ids={
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in resources
            if "LogicalResourceId" in r  # moto lists skipped resource types without ids
        },
    )


def subscribe(
    client: ClientFactory, stack: Stack, logical_id: str, template: dict[str, Any] | None = None
) -> str:
    """Create the template's subscription ``logical_id``; its ARN. Idempotent, as SNS is."""
    properties = (load() if template is None else template)["Resources"][logical_id]["Properties"]
    attributes = {"RawMessageDelivery": str(properties.get("RawMessageDelivery", False)).lower()}
    if "FilterPolicy" in properties:
        attributes["FilterPolicyScope"] = properties.get("FilterPolicyScope", "MessageAttributes")
        attributes["FilterPolicy"] = json.dumps(properties["FilterPolicy"])
    response = client("sns").subscribe(
        TopicArn=_resolve(client, stack, properties["TopicArn"]),
        Protocol=properties["Protocol"],
        Endpoint=_resolve(client, stack, properties["Endpoint"]),
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )
    arn: str = response["SubscriptionArn"]
    return arn


def _resolve(client: ClientFactory, stack: Stack, value: Any) -> str:
    """The few intrinsic functions subscriptions use: ``Ref`` to a topic, a queue's ``Arn``."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return stack.physical_ids[value["Ref"]]
    logical_id, attribute = value["Fn::GetAtt"]
    if attribute == "Arn":
        url = stack.physical_ids[logical_id]
        arn: str = client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        return arn
    raise ValueError(f"cannot resolve {value!r} outside CloudFormation")
