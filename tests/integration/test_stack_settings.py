"""A process acting on a deployed stack (the ``blog --stack`` command, a test) takes the
settings its functions run with, not its own shell's: a setting the functions leave unset is
removed, so the default applies on both sides.

The archive puts a position in bucket ``position // segment_size``: a process that wrote with
another ``ARCHIVE_SEGMENT_SIZE`` than the functions put its records where they never look, and
their catch-up passed the positions over as holes once the hole grace ran out.
"""

import io
import json
import os
import zipfile
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from functions import archive, settings
from operations import deployed

ROLE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def _code() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive_file:
        archive_file.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


@pytest.fixture
def stack(aws_env: None) -> Iterator[deployed.Resources]:
    """Two functions deployed with their own settings variables; the stack's resources."""
    with mock_aws():
        role = boto3.client("iam").create_role(
            RoleName="blog-role", AssumeRolePolicyDocument=json.dumps(ROLE_POLICY)
        )["Role"]["Arn"]
        functions = {
            "QueryRebuild": {"BLOG_PREFIX": "blog-x", "ARCHIVE_HOLE_GRACE_SECONDS": "300"},
            "ArchiveSegmenter": {
                "ARCHIVE_SEAL_AGE_SECONDS": "86400",
                "POWERTOOLS_LOG_LEVEL": "INFO",
            },
        }
        for name, variables in functions.items():
            boto3.client("lambda").create_function(
                FunctionName=f"blog-x-{name}",
                Runtime="python3.12",
                Role=role,
                Handler="app.handler",
                Code={"ZipFile": _code()},
                Environment={"Variables": variables},
            )
        yield deployed.Resources(
            stack="blog-x",
            prefix="blog-x",
            tables={},
            queues={},
            dead_letter_queues={},
            topic_arn="arn:aws:sns:us-east-1:123456789012:blog-x-events",
            archive_bucket="blog-x-archive",
            functions={name: f"blog-x-{name}" for name in functions},
            mappings={},
            physical_ids={},
            rest_api_id=None,
        )


def test_a_process_on_a_stack_takes_its_functions_settings_and_drops_its_shells(
    stack: deployed.Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a shell whose stage sets a segment size and hole grace the functions do not have
    monkeypatch.setenv("ARCHIVE_SEGMENT_SIZE", "10")
    monkeypatch.setenv("ARCHIVE_HOLE_GRACE_SECONDS", "0")
    monkeypatch.setenv("ARCHIVE_RETENTION_DAYS", "1")
    # WHEN it takes the stack's settings
    values = deployed.settings_environment(boto3.client, stack)
    environ = dict(os.environ)
    deployed.use_settings(environ, values)
    for variable in values:
        if variable in environ:
            monkeypatch.setenv(variable, environ[variable])
        else:
            monkeypatch.delenv(variable, raising=False)
    # THEN it reads and writes the archive as the functions do: their values, else the defaults
    config = settings.load()
    assert config.segment_size == settings.Settings(prefix="x").segment_size == 1000
    assert archive.bucket_of(config, 1500) == 1
    assert config.hole_grace_seconds == 300
    assert config.seal_age_seconds == 86400
    assert config.archive_retention_days == 7
    assert (config.prefix, config.archive_bucket) == ("blog-x", "blog-x-archive")
    # AND only settings variables are taken from the functions
    assert "POWERTOOLS_LOG_LEVEL" not in values
