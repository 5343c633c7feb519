"""What the moto fix, codec and serving tests share: their tables, call counts, and a story
run on moto, then on the patched moto."""

from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from moto import mock_aws

from emulator import moto_patches

T = TypeVar("T")


def counting(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    """A list that grows by one at each call of ``owner.name`` (a function or method)."""
    calls: list[int] = []
    original: Callable[..., Any] = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


MOTO_FIXES = (
    "dynamodb-transactions",
    "dynamodb-query",
)
"""The patches of ``emulator.moto_fixes``, whatever ``BLOG_MOTO_SPEED_PATCHES`` says."""


def on_moto_then_patched(story: Callable[[], T]) -> tuple[T, T]:
    """``story()`` on moto's own code, then on moto with ``MOTO_FIXES`` (each in a fresh moto)."""
    with moto_patches.unpatched(), mock_aws():
        theirs = story()
    with moto_patches.applied(*MOTO_FIXES), mock_aws():
        mine = story()
    return theirs, mine


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


def trim_horizon(streams: Any, stream_arn: str) -> str:
    """An iterator from the start of the stream's one shard."""
    shards = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
    iterator: str = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shards[0]["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return iterator
