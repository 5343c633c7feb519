"""``make deploy STACK=name``: the packaged template and zip, deployed as one CloudFormation stack.

What ``aws cloudformation package`` and ``deploy`` do, in one command: it creates the artifact
bucket if it is missing (private, encrypted), uploads ``deployment.zip`` under its
content hash, points every function's ``CodeUri`` at it, uploads the template (too large to
pass inline: CloudFormation takes at most 51,200 bytes in ``TemplateBody``), then creates the
stack or updates it, printing each resource's progress, and ends with the stack's outputs
(the API's URL among them) or with the failed resources and their reasons.

It targets AWS with the usual settings (profile, region, credentials), or any endpoint given
in ``AWS_ENDPOINT_URL`` (``make deploy-local`` deploys into MiniStack through it).

The stack's ``Prefix`` is its name. Every alarm must wake someone: a new stack needs
``--alerts-email`` (``ALERTS_EMAIL``) or ``--alerts-topic-arn`` (``ALERTS_TOPIC_ARN``); an
update keeps the previous value unless one is given.
"""

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from emulator.runner import ClientFactory

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "build" / "package"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
FUNCTION = "AWS::Serverless::Function"
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827)
"""The values CloudWatch Logs accepts for a log group's retention (up to 5 years here)."""
SETTLED = ("_COMPLETE", "_FAILED")
GOOD = ("CREATE_COMPLETE", "UPDATE_COMPLETE")
Progress = Callable[[str], None]


class DeployFailed(RuntimeError):
    """The deploy could not be done; the message says why, for the operator."""


class Request(BaseModel):
    """A deploy's arguments, validated before anything is created."""

    model_config = ConfigDict(frozen=True)

    stack: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=40)
    """Also the ``Prefix`` of every resource: lower case, digits and dashes (S3 and SQS names)."""
    alerts_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    alerts_topic_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$"
    )
    log_retention_days: int | None = None
    bucket: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    template: Path = PACKAGE / "sam.json"
    timeout: float = Field(default=1800, gt=0)

    @model_validator(mode="after")
    def _one_alerts_target(self) -> "Request":
        if self.alerts_email and self.alerts_topic_arn:
            raise ValueError("give --alerts-email or --alerts-topic-arn, not both")
        if self.log_retention_days is not None and self.log_retention_days not in RETENTION_DAYS:
            raise ValueError(f"--log-retention-days must be one of {list(RETENTION_DAYS)}")
        return self

    def parameters(self, previous: dict[str, str] | None) -> list[dict[str, Any]]:
        """The stack's parameters: those given set, others kept at their previous values.

        ``previous`` holds the stack's parameter values (None for a new stack); one it lacks
        and is not given takes the template's default. The values are passed, not
        ``UsePreviousValue``, which moto refuses for a parameter that took its default.
        """
        given = {
            "Prefix": self.stack,
            "AlertsEmail": self.alerts_email,
            "AlertsTopicArn": self.alerts_topic_arn,
            "LogRetentionInDays": (
                None if self.log_retention_days is None else str(self.log_retention_days)
            ),
        }
        if previous is not None and self.alerts_email:
            given["AlertsTopicArn"] = ""  # an e-mail replaces a topic given before
        if previous is not None and self.alerts_topic_arn:
            given["AlertsEmail"] = ""
        parameters: list[dict[str, Any]] = []
        for key, value in given.items():
            if value is not None:
                parameters.append({"ParameterKey": key, "ParameterValue": value})
            elif previous is not None and key in previous:
                parameters.append({"ParameterKey": key, "ParameterValue": previous[key]})
        return parameters


@dataclass(frozen=True)
class Outcome:
    stack: str
    status: str
    outputs: dict[str, str]


def client_factory() -> ClientFactory:
    """boto3 clients with this shell's AWS settings (``AWS_ENDPOINT_URL`` included)."""
    session = boto3.session.Session()

    @cache
    def client(service: str) -> Any:
        return session.client(service)

    return client


def endpoint_of(client: ClientFactory) -> str | None:
    """The S3 endpoint when it is not AWS's (a local engine), else None."""
    url: str = client("s3").meta.endpoint_url
    return None if url.endswith(".amazonaws.com") else url.rstrip("/")


def artifact_bucket(client: ClientFactory, request: Request) -> str:
    """The artifact bucket's name: given, or ``<stack>-artifacts-<account>-<region>``."""
    if request.bucket:
        return request.bucket
    account = client("sts").get_caller_identity()["Account"]
    region = client("s3").meta.region_name
    return f"{request.stack}-artifacts-{account}-{region}"[:63].rstrip("-")


def ensure_bucket(client: ClientFactory, bucket: str, progress: Progress) -> None:
    """Create the artifact bucket (private, encrypted) unless it exists already."""
    s3 = client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code == "403":
            raise DeployFailed(f"bucket {bucket} belongs to someone else: give --bucket") from error
        if code not in ("404", "NoSuchBucket"):
            raise
    region = s3.meta.region_name
    location = {} if region == "us-east-1" else {"LocationConstraint": region}
    s3.create_bucket(Bucket=bucket, **({"CreateBucketConfiguration": location} if location else {}))
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    progress(f"created artifact bucket {bucket}")


def with_code_at(template: dict[str, Any], bucket: str, key: str) -> dict[str, Any]:
    """The template with every function's ``CodeUri`` pointing at the uploaded zip."""
    document: dict[str, Any] = json.loads(json.dumps(template))
    for resource in document["Resources"].values():
        if resource["Type"] == FUNCTION:
            resource["Properties"]["CodeUri"] = {"Bucket": bucket, "Key": key}
    return document


def upload(
    client: ClientFactory, request: Request, bucket: str, progress: Progress
) -> tuple[str, dict[str, Any]]:
    """Upload the zip and the template pointing at it; the template's URL, and the template."""
    path = request.template
    if not path.exists() or not (path.parent / "deployment.zip").exists():
        raise DeployFailed(f"no package at {path.parent}: run `make package` first")
    template = json.loads(path.read_text())
    code = (path.parent / "deployment.zip").read_bytes()
    s3 = client("s3")
    key = f"{request.stack}/deployment-{hashlib.sha256(code).hexdigest()[:16]}.zip"
    s3.put_object(Bucket=bucket, Key=key, Body=code)
    document = with_code_at(template, bucket, key)
    body = json.dumps(document).encode()
    template_key = f"{request.stack}/sam-{hashlib.sha256(body).hexdigest()[:16]}.json"
    s3.put_object(Bucket=bucket, Key=template_key, Body=body)
    progress(f"uploaded s3://{bucket}/{key} ({len(code) // 1024} KiB) and the template")
    endpoint = endpoint_of(client)
    if endpoint:
        return f"{endpoint}/{bucket}/{template_key}", document
    region = s3.meta.region_name
    return f"https://{bucket}.s3.{region}.amazonaws.com/{template_key}", document


def current(cfn: Any, stack: str) -> tuple[str, dict[str, str]] | None:
    """The stack's status and parameters, or None if there is none (or a deleted one)."""
    try:
        description = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise
    status: str = description["StackStatus"]
    if status == "DELETE_COMPLETE":
        return None
    parameters = description.get("Parameters", [])
    return status, {p["ParameterKey"]: p.get("ParameterValue", "") for p in parameters}


def deploy(
    client: ClientFactory,
    request: Request,
    progress: Progress = lambda line: print(line, file=sys.stderr, flush=True),
    poll_seconds: float = 2.0,
) -> Outcome:
    """Create or update the stack; its final status and outputs, or ``DeployFailed``."""
    cfn = client("cloudformation")
    found = current(cfn, request.stack)
    status, previous = found if found else (None, None)
    if status is not None and status.endswith("_IN_PROGRESS"):
        raise DeployFailed(f"stack {request.stack} is {status}: wait for it to settle")
    if status == "ROLLBACK_COMPLETE":
        raise DeployFailed(
            f"stack {request.stack} is ROLLBACK_COMPLETE (its creation failed): delete it "
            "(`aws cloudformation delete-stack`) and deploy again"
        )
    existing = status is not None
    if not existing and not (request.alerts_email or request.alerts_topic_arn):
        raise DeployFailed(
            "a new stack needs someone its alarms wake: ALERTS_EMAIL=you@example.com "
            "or ALERTS_TOPIC_ARN=arn:aws:sns:...:your-topic"
        )
    bucket = artifact_bucket(client, request)
    ensure_bucket(client, bucket, progress)
    url, _ = upload(client, request, bucket, progress)
    arguments: dict[str, Any] = {
        "StackName": request.stack,
        "TemplateURL": url,
        "Parameters": request.parameters(previous),
        "Capabilities": CAPABILITIES,
    }
    started = time.time()
    if existing:
        try:
            cfn.update_stack(**arguments)
        except ClientError as error:
            if "No updates are to be performed" in str(error):
                progress(f"stack {request.stack} is up to date")
                return outcome(cfn, request.stack)
            raise
        progress(f"updating stack {request.stack}")
    else:
        cfn.create_stack(**arguments)
        progress(f"creating stack {request.stack}")
    final = wait(cfn, request.stack, started, request.timeout, progress, poll_seconds)
    if final not in GOOD:
        raise DeployFailed(
            f"stack {request.stack} is {final}: " + "; ".join(failures(cfn, request))
        )
    return outcome(cfn, request.stack)


def wait(
    cfn: Any, stack: str, since: float, timeout: float, progress: Progress, poll_seconds: float
) -> str:
    """Poll until the stack settles, printing each new resource event; its final status."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while True:
        events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
        for event in reversed(events):
            key = event["EventId"]
            timestamp = event["Timestamp"]
            if key in seen or (
                hasattr(timestamp, "timestamp") and timestamp.timestamp() < since - 5
            ):
                continue
            seen.add(key)
            reason = event.get("ResourceStatusReason")
            progress(
                f"  {event['LogicalResourceId']}: {event['ResourceStatus']}"
                + (f" ({reason})" if reason and "FAILED" in event["ResourceStatus"] else "")
            )
        status: str = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            return status
        if time.monotonic() > deadline:
            raise DeployFailed(f"stack {stack} still {status} after {timeout:.0f}s")
        time.sleep(poll_seconds)


def failures(cfn: Any, request: Request) -> list[str]:
    events = cfn.describe_stack_events(StackName=request.stack)["StackEvents"]
    return [
        f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}"
        for e in events
        if e.get("ResourceStatus", "").endswith("FAILED")
    ][:10]


def outcome(cfn: Any, stack: str) -> Outcome:
    description = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    return Outcome(
        stack=stack,
        status=description["StackStatus"],
        outputs={o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])},
    )


def parse(argv: Sequence[str] | None = None) -> Request:
    """The command line (and the ``ALERTS_*`` / ``LOG_RETENTION_DAYS`` variables) as a Request;
    ``SystemExit(2)`` with the reason if anything is wrong."""
    parser = argparse.ArgumentParser(
        prog="python -m operations.deploy",
        description="Deploy the packaged stack (make package) to AWS, or to AWS_ENDPOINT_URL.",
        epilog="example: ALERTS_EMAIL=you@example.com make deploy STACK=blog-prod",
    )
    parser.add_argument("--stack", required=True, help="stack name, also every resource's prefix")
    parser.add_argument(
        "--alerts-email",
        default=os.environ.get("ALERTS_EMAIL") or None,
        help="an e-mail address every alarm wakes (env ALERTS_EMAIL)",
    )
    parser.add_argument(
        "--alerts-topic-arn",
        default=os.environ.get("ALERTS_TOPIC_ARN") or None,
        help="or an existing SNS topic every alarm publishes to (env ALERTS_TOPIC_ARN)",
    )
    parser.add_argument(
        "--log-retention-days",
        type=int,
        default=int(os.environ["LOG_RETENTION_DAYS"])
        if os.environ.get("LOG_RETENTION_DAYS", "").isdigit()
        else None,
        help="days each function's logs are kept (default 30 on a new stack)",
    )
    parser.add_argument(
        "--bucket", help="artifact bucket (default <stack>-artifacts-<account>-<region>)"
    )
    parser.add_argument("--template", type=Path, default=PACKAGE / "sam.json")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the stack")
    args = parser.parse_args(argv)
    try:
        return Request(**vars(args))
    except ValidationError as error:
        problems = "; ".join(
            f"--{'.'.join(map(str, e['loc'])).replace('_', '-') or 'arguments'}: {e['msg']}"
            for e in error.errors(include_url=False)
        )
        parser.error(problems)


def main(argv: Sequence[str] | None = None) -> int:
    request = parse(argv)
    try:
        result = deploy(client_factory(), request)
    except DeployFailed as error:
        print(f"deploy: {error}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as error:
        print(f"deploy: AWS refused: {error}", file=sys.stderr)
        return 1
    print(f"stack {result.stack}: {result.status}", file=sys.stderr)
    for key, value in sorted(result.outputs.items()):
        if key in ("EndpointURL", "EventsTopicArn", "ArchiveBucketName"):
            print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
