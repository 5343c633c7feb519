"""``make deploy-local``: the packaged template and zip, deployed as a stack on MiniStack.

What AWS would run from ``make package``, on loopback: the zip's functions, the REST API, the
real event source mappings and schedule rules. It deploys with ``make deploy``'s own code
(``operations/deploy.py``: the zip in a bucket, every ``CodeUri`` pointing at it, the template
by URL), applies
what MiniStack skips (``bridge``), warms the functions, prints what to copy, and stays in the
foreground until Ctrl+C, which stops MiniStack and deletes everything it unpacked.
"""

import argparse
import json
import signal
import sys
import time
import urllib.request
from functools import cache
from pathlib import Path
from types import FrameType
from typing import Any

import boto3

from emulator import ministack
from emulator.runner import ClientFactory
from emulator.template import ROOT
from operations import deploy as deploy_command
from operations import deployed

PACKAGE = ROOT / "build" / "package"
DEFAULT_STACK = "blog-dev"
ARTIFACTS = "deploy-local-artifacts"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
FUNCTION = "AWS::Serverless::Function"
ALERTS_EMAIL = "alerts@example.com"
"""Who the alarms wake on MiniStack: an address nobody reads (MiniStack sends no mail)."""


def client_factory(endpoint: str) -> ClientFactory:
    """boto3 clients for MiniStack, whatever this shell's AWS settings say."""

    @cache
    def client(service: str) -> Any:
        return boto3.session.Session().client(
            service,
            endpoint_url=endpoint,
            region_name=ministack.REGION,
            aws_access_key_id=ministack.CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=ministack.CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    return client


def deploy(
    client: ClientFactory,
    endpoint: str,
    name: str,
    template_path: Path = PACKAGE / "sam.json",
    timeout: float = 120,
) -> deployed.Resources:
    """Create stack ``name`` (``Prefix`` = ``name``) as ``make deploy`` does, then bridge."""
    request = deploy_command.Request(
        stack=name,
        alerts_email=ALERTS_EMAIL,
        bucket=ARTIFACTS,
        template=template_path,
        timeout=timeout,
    )
    deploy_command.deploy(client, request, progress=_quiet, poll_seconds=0.2)
    bridge(client, name, json.loads(template_path.read_text()))
    return deployed.find(client, name)


def _quiet(line: str) -> None:
    """Only the failures of the progress lines: the lane reads the stack's three lines."""
    if "FAILED" in line:
        print(line, file=sys.stderr, flush=True)


def bridge(client: ClientFactory, name: str, template: dict[str, Any]) -> list[str]:
    """Apply what MiniStack 1.5.33 skips when it creates the stack; what it applied.

    Its only silent gap in this template: ``TimeToLiveSpecification`` of a table (the event
    archive's ``expires_at``) is dropped, so it is set with ``UpdateTimeToLive``, as the
    template says. Other gaps (stream failure handling, the purge rule) are behaviour, not
    configuration: moto and the event-source runner cover them (docs/deploy.md).
    """
    cfn, dynamodb = client("cloudformation"), client("dynamodb")
    applied = []
    for logical_id, resource in template["Resources"].items():
        ttl = resource.get("Properties", {}).get("TimeToLiveSpecification")
        if resource["Type"] != "AWS::DynamoDB::Table" or not ttl or not ttl.get("Enabled"):
            continue
        table = cfn.describe_stack_resource(StackName=name, LogicalResourceId=logical_id)[
            "StackResourceDetail"
        ]["PhysicalResourceId"]
        current = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            continue
        dynamodb.update_time_to_live(
            TableName=table,
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
        )
        applied.append(f"time to live {ttl['AttributeName']} on {table}")
    return applied


def api_url(endpoint: str, resources: deployed.Resources) -> str:
    """Where MiniStack serves the REST API's stage; it ends with ``/``, as the page needs."""
    return f"{endpoint}/_aws/execute-api/{resources.rest_api_id}/{deployed.API_STAGE}/"


def warm(
    client: ClientFactory, resources: deployed.Resources, url: str, template: dict[str, Any]
) -> dict[str, str]:
    """Invoke each function once with an event that changes nothing; how each one went.

    Each function's first invocation (and the first after an update) unpacks its code and
    imports it, seconds under load. The API handler is warmed through the API (``GET /``),
    the stream publisher with an empty batch and scheduled functions with their schedule's
    event (their runs are idempotent). An SQS consumer is left cold: Powertools refuses an
    empty batch, every real record changes data, and MiniStack recycles a worker whose
    invocation failed, so no invoke can warm it.
    """
    consumers = deployed.StackConsumers(client, resources)
    outcome = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != FUNCTION:
            continue
        kinds = {event["Type"] for event in resource["Properties"].get("Events", {}).values()}
        started = time.monotonic()
        if logical_id == "APIHandler":
            with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 (loopback)
                response.read()
        elif kinds == {"DynamoDB"}:
            consumers.invoke_function(resources.functions[logical_id], {"Records": []})
        elif kinds == {"Schedule"}:
            consumers.invoke_function(
                resources.functions[logical_id], deployed.scheduled_event(resources)
            )
        else:
            outcome[logical_id] = "cold (an SQS consumer starts on its first message)"
            continue
        outcome[logical_id] = f"warm ({time.monotonic() - started:.1f}s)"
    return outcome


def instructions(endpoint: str, url: str, stack: str) -> list[str]:
    """The three lines ``make deploy-local`` prints for the user to copy."""
    return [
        f"API: {url}",
        f"AWS_ENDPOINT_URL={endpoint}",
        f"AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test "
        f"AWS_DEFAULT_REGION={ministack.REGION} blog --stack {stack} status",
    ]


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=ministack.DEFAULT_PORT)
    parser.add_argument("--stack", default=DEFAULT_STACK)
    parser.add_argument("--template", type=Path, default=PACKAGE / "sam.json")
    args = parser.parse_args(argv)
    # Ctrl+C and a plain kill both clean up, even when started with SIGINT ignored (``&``).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    ministack.check_interpreter()
    template = json.loads(args.template.read_text())
    try:
        with ministack.MiniStack(args.port) as server:
            try:
                serve(server, args.stack, args.template, template)
            except KeyboardInterrupt:
                print(
                    "deploy-local: stopping MiniStack, deleting what it unpacked", file=sys.stderr
                )
    except KeyboardInterrupt:
        pass  # during start: MiniStack is stopped all the same
    except (ministack.MiniStackFailed, deploy_command.DeployFailed) as error:
        print(f"deploy-local: {error}", file=sys.stderr)
        return 1
    return 0


def serve(server: ministack.MiniStack, stack: str, path: Path, template: dict[str, Any]) -> None:
    """Deploy, warm, print what to copy, and wait for Ctrl+C."""
    client = client_factory(server.endpoint)
    resources = deploy(client, server.endpoint, stack, path)
    url = api_url(server.endpoint, resources)
    for function, state in warm(client, resources, url, template).items():
        print(f"  {function}: {state}", file=sys.stderr)
    print(f"stack {stack} deployed on MiniStack; Ctrl+C stops it", file=sys.stderr)
    print("\n".join(instructions(server.endpoint, url, stack)), flush=True)
    signal.pause()


if __name__ == "__main__":
    sys.exit(main())
