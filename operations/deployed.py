"""A deployed stack of this project, found from CloudFormation, and its consumers' switches.

``find`` reads a stack (on AWS, or on a local engine through ``AWS_ENDPOINT_URL``) and returns
its tables, queues, topic, functions and each function's event source mapping UUIDs. It
refuses, changing nothing, a stack that does not exist or that is not this project's.

``StackConsumers`` pauses and resumes a consumer as an operator does on AWS: by disabling and
enabling its function's event source mappings. It takes the runner's source names
(``query_consumer``), so code written against ``emulator.control.Consumers`` works on it.
"""

import json
import os
import time
from collections.abc import Callable, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from chalice.utils import to_cfn_resource_name
from pydantic import BaseModel, ConfigDict

from emulator import stack as template_stack
from emulator.runner import ClientFactory
from functions import names
from functions.query import recovery
from functions.settings import VARIABLES as SETTINGS_VARIABLES
from functions.settings import load as load_settings

TABLES = {
    names.POSTS_TABLE: "PostsTable",
    names.COMMENTS_TABLE: "CommentsTable",
    names.MODERATION_TABLE: "ModerationTable",
    names.OUTBOX_TABLE: "OutboxTable",
    names.VIEW_TABLE: "QueryViewTable",
    names.ARCHIVE_TABLE: "EventArchiveTable",
}
"""Table suffix -> the logical id that ``infra/template.yaml`` gives it."""
TOPIC = "EventsTopic"
BUCKET = "ArchiveBucket"
API = "RestAPI"
API_STAGE = "api"
"""``api_gateway_stage`` of the ``dev`` stage in ``.chalice/config.json``."""
PAUSED_STATES = ("Disabled", "Disabling")
REBUILD_FUNCTION = "query_rebuild"
REBUILD_WAIT_SECONDS = 900
"""How long a rebuild step's invocation is waited for: Lambda's longest timeout."""


def queue_logical_id(consumer: str) -> str:
    return f"{consumer.title()}Queue"


def dead_letter_logical_id(consumer: str) -> str:
    return f"{consumer.title()}DeadLetterQueue"


def subscription_logical_id(consumer: str) -> str:
    return f"{consumer.title()}Subscription"


REQUIRED = (
    *TABLES.values(),
    TOPIC,
    BUCKET,
    *(f(c) for c in names.CONSUMERS for f in (queue_logical_id, dead_letter_logical_id)),
)


class StackNotFound(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no stack named {name!r} here (check the region and AWS_ENDPOINT_URL)")


class NotThisProject(ValueError):
    def __init__(self, name: str, missing: list[str]) -> None:
        super().__init__(
            f"stack {name!r} is not this blog's: it has no {', '.join(sorted(missing))}"
        )


class Resources(BaseModel):
    """What a deployed stack holds, by the names the code uses."""

    model_config = ConfigDict(frozen=True)

    stack: str
    prefix: str
    """The stack's ``Prefix`` parameter: the functions' ``BLOG_PREFIX``."""
    tables: dict[str, str]
    """Table suffix (``functions.names``) -> table name."""
    queues: dict[str, str]
    """Consumer -> its queue's URL."""
    dead_letter_queues: dict[str, str]
    topic_arn: str
    archive_bucket: str
    functions: dict[str, str]
    """Logical id (``QueryConsumer``) -> function name."""
    mappings: dict[str, list[str]]
    """Logical id of a function -> the UUIDs of its event source mappings."""
    physical_ids: dict[str, str]
    rest_api_id: str | None

    def function(self, source: str) -> str:
        """The function name of a runner source (``query_consumer``); KeyError if none."""
        return self.functions[to_cfn_resource_name(source)]

    def environment(self) -> dict[str, str]:
        """The settings variables named by the stack's resources (the functions may set more:
        ``settings_environment``)."""
        return {
            names.PREFIX_VARIABLE: self.prefix,
            "EVENTS_TOPIC_ARN": self.topic_arn,
            "ARCHIVE_BUCKET": self.archive_bucket,
        }


def settings_environment(client: ClientFactory, resources: Resources) -> dict[str, str | None]:
    """Every settings variable (``functions/settings.py``) as the stack's functions run with it:
    its value, or None where they leave it unset (their default applies, not this shell's).

    A process acting on the stack (the ``blog`` command, a test) must read and write with the
    functions' settings: the archive's bucket of a position is ``position // segment_size``, so
    a different ``ARCHIVE_SEGMENT_SIZE`` writes records where the functions never look.
    """
    values: dict[str, str | None] = dict.fromkeys(SETTINGS_VARIABLES)
    for function in resources.functions.values():
        variables = (
            client("lambda")
            .get_function_configuration(FunctionName=function)
            .get("Environment", {})
            .get("Variables", {})
        )
        values.update({k: v for k, v in variables.items() if k in SETTINGS_VARIABLES})
    values.update(resources.environment())
    return values


def use_settings(environ: MutableMapping[str, str], values: Mapping[str, str | None]) -> None:
    """Set ``values`` (from ``settings_environment``) in ``environ``, removing the unset ones."""
    for variable, value in values.items():
        if value is None:
            environ.pop(variable, None)
        else:
            environ[variable] = value


def find(client: ClientFactory, name: str) -> Resources:
    """The resources of stack ``name``; ``StackNotFound`` or ``NotThisProject`` otherwise."""
    cfn = client("cloudformation")
    try:
        description = cfn.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as error:
        if "does not exist" in str(error):
            raise StackNotFound(name) from error
        raise
    resources = [
        r
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=name)
        for r in page["StackResourceSummaries"]
        if r.get("PhysicalResourceId")
    ]
    ids = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
    parameters = {
        p["ParameterKey"]: p.get("ParameterValue") for p in description.get("Parameters", [])
    }
    missing = [logical for logical in REQUIRED if logical not in ids]
    if "Prefix" not in parameters:
        missing.append("Prefix parameter")
    if missing:
        raise NotThisProject(name, missing)
    functions = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in resources
        if r["ResourceType"] == "AWS::Lambda::Function"
    }
    return Resources(
        stack=name,
        prefix=str(parameters["Prefix"]),
        tables={suffix: ids[logical] for suffix, logical in TABLES.items()},
        queues={c: ids[queue_logical_id(c)] for c in names.CONSUMERS},
        dead_letter_queues={c: ids[dead_letter_logical_id(c)] for c in names.CONSUMERS},
        topic_arn=ids[TOPIC],
        archive_bucket=ids[BUCKET],
        functions=functions,
        mappings=_mappings_by_function(client, resources, functions),
        physical_ids=ids,
        rest_api_id=ids.get(API),
    )


def _mappings_by_function(
    client: ClientFactory, resources: list[dict[str, Any]], functions: Mapping[str, str]
) -> dict[str, list[str]]:
    """Each mapping's function, as Lambda reports it (not guessed from logical ids)."""
    logical_by_name = {physical: logical for logical, physical in functions.items()}
    mappings: dict[str, list[str]] = {}
    for resource in resources:
        if resource["ResourceType"] != "AWS::Lambda::EventSourceMapping":
            continue
        uuid = resource["PhysicalResourceId"]
        arn = client("lambda").get_event_source_mapping(UUID=uuid)["FunctionArn"]
        logical = logical_by_name[arn.split(":function:")[1].split(":")[0]]
        mappings.setdefault(logical, []).append(uuid)
    return mappings


class FunctionFailed(RuntimeError):
    def __init__(self, function: str, payload: Any) -> None:
        super().__init__(f"{function} failed: {payload}")
        self.payload = payload


class StackConsumers:
    """Pause, resume and invoke a deployed stack's functions by their runner source names."""

    def __init__(self, client: ClientFactory, resources: Resources) -> None:
        self._client = client
        self.resources = resources

    def _uuids(self, source: str) -> list[str]:
        uuids = self.resources.mappings.get(to_cfn_resource_name(source))
        if not uuids:
            raise KeyError(f"{source!r} has no event source mapping in {self.resources.stack}")
        return uuids

    def pause(self, name: str) -> None:
        for uuid in self._uuids(name):
            self._client("lambda").update_event_source_mapping(UUID=uuid, Enabled=False)

    def resume(self, name: str) -> None:
        for uuid in self._uuids(name):
            self._client("lambda").update_event_source_mapping(UUID=uuid, Enabled=True)

    def is_paused(self, name: str) -> bool:
        return all(
            self._client("lambda").get_event_source_mapping(UUID=uuid)["State"] in PAUSED_STATES
            for uuid in self._uuids(name)
        )

    def invoke(self, name: str, event: Any) -> Any:
        """Invoke ``name``'s function synchronously; its decoded answer, or FunctionFailed."""
        return self.invoke_function(self.resources.function(name), event)

    def invoke_function(self, function: str, event: Any) -> Any:
        response = self._client("lambda").invoke(
            FunctionName=function, Payload=json.dumps(event).encode()
        )
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            raise FunctionFailed(function, payload)
        return payload

    def fire(self, name: str) -> Any:
        """Run a scheduled function now, as its rule would (a rule cannot be fired on demand)."""
        return self.invoke(name, scheduled_event(self.resources))


def rebuild_step(consumers: StackConsumers) -> Callable[[bool], recovery.RebuildProgress]:
    """A step of the view's chunked rebuild, run by the stack's ``query_rebuild`` function.

    Each invocation steps until little of its time is left, so the call waits longer than the
    function's timeout. A run the function's schedule is making already (reserved concurrency
    1) throttles this one: it waits and reads where the rebuild stands. A run that timed out
    midway lost at most a chunk: where it stands is read from the table, and the next step
    resumes it.
    """
    function = consumers.resources.function(REBUILD_FUNCTION)
    patient = boto3.session.Session().client(
        "lambda",
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
        config=Config(read_timeout=REBUILD_WAIT_SECONDS, retries={"max_attempts": 1}),
    )

    def step(start: bool) -> recovery.RebuildProgress:
        event = {**scheduled_event(consumers.resources), "detail": {"start": True} if start else {}}
        for _ in range(60):
            try:
                response = patient.invoke(FunctionName=function, Payload=json.dumps(event).encode())
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "TooManyRequestsException":
                    raise
                time.sleep(5)
                continue
            answer = json.loads(response["Payload"].read() or b"null")
            if response.get("FunctionError"):
                if "timed out" not in json.dumps(answer):
                    raise FunctionFailed(function, answer)
                return recovery.rebuild_progress(load_settings())
            return recovery.RebuildProgress.model_validate(answer)
        raise TimeoutError("the rebuild function stayed busy for 5 minutes")

    return step


def scheduled_event(resources: Resources) -> dict[str, Any]:
    """The event an EventBridge schedule rule sends."""
    return {
        "version": "0",
        "id": "00000000-0000-0000-0000-000000000000",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": resources.topic_arn.split(":")[4],
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": resources.topic_arn.split(":")[3],
        "resources": [],
        "detail": {},
    }


def queue_arn(client: ClientFactory, url: str) -> str:
    attributes = client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def subscription(client: ClientFactory, resources: Resources, consumer: str) -> str | None:
    """The ARN of ``consumer``'s live subscription to the events topic, if it has one."""
    endpoint = queue_arn(client, resources.queues[consumer])
    pages = client("sns").get_paginator("list_subscriptions_by_topic")
    for page in pages.paginate(TopicArn=resources.topic_arn):
        for entry in page["Subscriptions"]:
            if entry["Endpoint"] == endpoint:
                return str(entry["SubscriptionArn"])
    return None


def resubscribe(client: ClientFactory, resources: Resources, consumer: str) -> bool:
    """Recreate ``consumer``'s subscription from the stack's own template if it is missing."""
    if subscription(client, resources, consumer) is not None:
        return False
    body = client("cloudformation").get_template(StackName=resources.stack)["TemplateBody"]
    template = body if isinstance(body, dict) else json.loads(body)
    described = template_stack.Stack(resources.stack, {}, resources.physical_ids)
    template_stack.subscribe(client, described, subscription_logical_id(consumer), template)
    return True
