"""Fixtures of the integration tests that build their own moto, not the deployed stack, and
of the tests that read the packaged template."""

import json
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def template(packaged: Path) -> dict[str, Any]:
    """The packaged template (``make package``'s ``sam.json``), parsed."""
    document: dict[str, Any] = json.loads(packaged.read_text())
    return document


def functions_of(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The packaged template's functions' properties, by logical id."""
    return {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    # Without it botocore 1.44 sends DynamoDB Streams calls where mock_aws does not answer.
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
