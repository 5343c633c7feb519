"""Tables the moto fix and codec tests create, in moto (mock_aws or a server)."""

from typing import Any


def create_table(dynamodb: Any, name: str) -> str:
    """A table keyed by ``pk`` with a NEW_AND_OLD_IMAGES stream; returns the stream ARN."""
    table = dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    arn: str = table["TableDescription"]["LatestStreamArn"]
    return arn


def create_indexed_table(dynamodb: Any, name: str) -> str:
    """``create_table``'s table with a sparse index on ``unsent`` (S), as the outbox has."""
    table = dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "unsent", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "unsent-index",
                "KeySchema": [{"AttributeName": "unsent", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    arn: str = table["TableDescription"]["LatestStreamArn"]
    return arn


def create_ranged_table(dynamodb: Any) -> None:
    """``pk`` (S) and ``sk`` (N), with a sparse index on ``flag`` sorted by ``at``."""
    dynamodb.create_table(
        TableName="r",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
            {"AttributeName": "flag", "AttributeType": "S"},
            {"AttributeName": "at", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "flagged",
                "KeySchema": [
                    {"AttributeName": "flag", "KeyType": "HASH"},
                    {"AttributeName": "at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
