"""``make deploy``'s code (``operations/deploy.py``) on moto: the artifact bucket, the upload,
create and update with progress, and the arguments refused before anything is created.

moto cannot expand the SAM transform, so the stacks here are a small plain template with the
packaged template's parameters; the packaged template itself is deployed by the same code on
MiniStack (``make deploy-local``, tests/ministack).
"""

import json
from pathlib import Path
from typing import Any

import pytest

from functions import aws
from operations import deploy

PARAMETERS = {
    "Prefix": {"Type": "String"},
    "AlertsEmail": {"Type": "String", "Default": ""},
    "AlertsTopicArn": {"Type": "String", "Default": ""},
    "LogRetentionInDays": {"Type": "Number", "Default": 30},
}


def package(tmp_path: Path, resources: dict[str, Any] | None = None) -> Path:
    """A package like ``make package``'s: a template beside a ``deployment.zip``."""
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": PARAMETERS,
        "Resources": resources
        or {
            "Queue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"QueueName": {"Fn::Sub": "${Prefix}-q"}},
            }
        },
        "Outputs": {
            "QueueUrl": {"Value": {"Ref": "Queue"}},
            "Retention": {"Value": {"Ref": "LogRetentionInDays"}},
            "Email": {"Value": {"Fn::Sub": "<${AlertsEmail}>"}},
        },
    }
    (tmp_path / "sam.json").write_text(json.dumps(template))
    (tmp_path / "deployment.zip").write_bytes(b"PK zip bytes")
    return tmp_path / "sam.json"


def request(template: Path, **given: Any) -> deploy.Request:
    return deploy.Request(stack="blog-try", template=template, timeout=60, **given)


def test_a_new_stack_is_created_with_its_artifact_bucket(moto: None, tmp_path: Path) -> None:
    # GIVEN a package and no bucket, no stack
    template = package(tmp_path)
    lines: list[str] = []
    # WHEN it is deployed with an address for the alarms
    result = deploy.deploy(
        aws.client, request(template, alerts_email="ops@example.com"), lines.append, 0
    )
    # THEN the stack is created with the parameters given, and its outputs are returned
    assert result.status == "CREATE_COMPLETE"
    assert result.outputs["QueueUrl"].endswith("/blog-try-q")
    assert (result.outputs["Retention"], result.outputs["Email"]) == ("30", "<ops@example.com>")
    # AND the artifact bucket was made private and encrypted, and holds the zip and template
    account = aws.client("sts").get_caller_identity()["Account"]
    bucket = f"blog-try-artifacts-{account}-us-east-1"
    s3 = aws.client("s3")
    [rule] = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    blocks = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(blocks.values())
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert any(k.startswith("blog-try/deployment-") and k.endswith(".zip") for k in keys)
    # AND the progress said what happened, resource by resource
    assert lines[0] == f"created artifact bucket {bucket}"
    assert "creating stack blog-try" in lines
    assert lines[-1] == "  blog-try: CREATE_COMPLETE"  # (moto reports only the stack's events)


def test_an_update_keeps_what_it_is_not_given(moto: None, tmp_path: Path) -> None:
    template = package(tmp_path)
    deploy.deploy(aws.client, request(template, alerts_email="ops@example.com"), print, 0)
    # WHEN it is deployed again with only a new retention
    lines: list[str] = []
    result = deploy.deploy(aws.client, request(template, log_retention_days=90), lines.append, 0)
    # THEN the stack is updated, the bucket reused and the address kept
    assert result.status == "UPDATE_COMPLETE"
    assert (result.outputs["Retention"], result.outputs["Email"]) == ("90", "<ops@example.com>")
    assert not any(line.startswith("created artifact bucket") for line in lines)
    assert "updating stack blog-try" in lines


def test_a_new_stack_without_anyone_to_wake_is_refused_before_anything_is_made(
    moto: None, tmp_path: Path
) -> None:
    with pytest.raises(deploy.DeployFailed, match=r"ALERTS_EMAIL=.*or ALERTS_TOPIC_ARN"):
        deploy.deploy(aws.client, request(package(tmp_path)), print, 0)
    assert aws.client("s3").list_buckets()["Buckets"] == []
    assert aws.client("cloudformation").list_stacks()["StackSummaries"] == []


def test_a_missing_package_is_a_clear_error(moto: None, tmp_path: Path) -> None:
    given = request(tmp_path / "sam.json", alerts_email="ops@example.com")
    with pytest.raises(deploy.DeployFailed, match="run `make package` first"):
        deploy.deploy(aws.client, given, print, 0)


def test_every_function_runs_the_uploaded_zip(moto: None, tmp_path: Path) -> None:
    function = {"Type": deploy.FUNCTION, "Properties": {"CodeUri": "./deployment.zip"}}
    template = package(tmp_path, {"APIHandler": function, "Other": function})
    aws.client("s3").create_bucket(Bucket="artifacts")
    url, document = deploy.upload(
        aws.client, request(template, bucket="artifacts"), "artifacts", print
    )
    uris = [r["Properties"]["CodeUri"] for r in document["Resources"].values()]
    assert uris[0] == uris[1]
    assert uris[0]["Bucket"] == "artifacts"
    body = aws.client("s3").get_object(Bucket="artifacts", Key=uris[0]["Key"])["Body"].read()
    assert body == b"PK zip bytes"
    assert url.startswith("https://artifacts.s3.us-east-1.amazonaws.com/blog-try/sam-")


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--stack", "Blog_Prod", "--alerts-email", "a@b.c"], "--stack"),
        (["--stack", "blog", "--alerts-email", "not an address"], "--alerts-email"),
        (
            ["--stack", "blog", "--alerts-topic-arn", "arn:aws:sqs:us-east-1:1:q"],
            "--alerts-topic-arn",
        ),
        (
            [
                "--stack",
                "blog",
                "--alerts-email",
                "a@b.c",
                "--alerts-topic-arn",
                "arn:aws:sns:us-east-1:123456789012:pager",
            ],
            "not both",
        ),
        (["--stack", "blog", "--alerts-email", "a@b.c", "--log-retention-days", "31"], "one of"),
    ],
)
def test_a_bad_argument_is_exit_code_2_naming_it(
    arguments: list[str],
    named: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in ("ALERTS_EMAIL", "ALERTS_TOPIC_ARN", "LOG_RETENTION_DAYS"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(SystemExit) as exited:
        deploy.parse(arguments)
    assert exited.value.code == 2
    assert named in capsys.readouterr().err


def test_the_make_variables_are_read_empty_ones_as_not_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALERTS_EMAIL", "ops@example.com")
    monkeypatch.setenv("ALERTS_TOPIC_ARN", "")
    monkeypatch.setenv("LOG_RETENTION_DAYS", "")
    parsed = deploy.parse(["--stack", "blog-prod"])
    assert (parsed.alerts_email, parsed.alerts_topic_arn, parsed.log_retention_days) == (
        "ops@example.com",
        None,
        None,
    )
