"""The cost benchmark's ledger (benchmarks/billed_calls.py) against moto: each call the code
makes through ``functions.aws`` is billed by what the table held before and after it."""

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from benchmarks.billed_calls import BilledCalls, timed_invocation
from functions import aws
from tests.integration.moto_helpers import create_indexed_table

TABLE = "billed"


@pytest.fixture
def dynamodb(aws_env: None) -> Iterator[Any]:
    """A table with a sparse index on ``unsent`` projecting every attribute, as the outbox had."""
    with mock_aws():
        aws.reset()
        client = aws.client("dynamodb")
        create_indexed_table(client, TABLE)
        yield client
        aws.reset()


def text(size: int) -> dict[str, str]:
    return {"S": "x" * size}


def test_a_put_is_billed_by_the_size_it_stored_and_its_index_entry(dynamodb: Any) -> None:
    # GIVEN the ledger
    with BilledCalls() as ledger:
        # WHEN a 2.5 KB item that the index holds is put
        dynamodb.put_item(
            TableName=TABLE, Item={"pk": {"S": "a"}, "unsent": {"S": "s1"}, "body": text(2500)}
        )
    # THEN three write units, and three for its entry in the index (every attribute projected)
    bill = ledger.bill(ledger.calls[0])
    assert (bill.write_units, bill.index_write_units) == (3, 3)


def test_an_update_pays_the_larger_item_and_a_moved_index_key_twice(dynamodb: Any) -> None:
    # GIVEN a 2.5 KB item in the index
    dynamodb.put_item(
        TableName=TABLE, Item={"pk": {"S": "a"}, "unsent": {"S": "s1"}, "body": text(2500)}
    )
    with BilledCalls() as ledger:
        # WHEN an update shrinks it and moves its index key
        dynamodb.update_item(
            TableName=TABLE,
            Key={"pk": {"S": "a"}},
            UpdateExpression="SET body = :b, unsent = :s",
            ExpressionAttributeValues={":b": text(10), ":s": {"S": "s2"}},
        )
    # THEN it pays the item's larger size, and in the index the old entry's delete (2.5 KB)
    # and the new entry's put (under 1 KB)
    bill = ledger.bill(ledger.calls[0])
    assert (bill.write_units, bill.index_write_units) == (3, 3 + 1)


def test_a_transaction_pays_twice_even_when_its_condition_fails(dynamodb: Any) -> None:
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "a"}, "body": text(1500)})
    # WHEN a transaction puts a new item and checks a condition that fails
    with BilledCalls() as ledger, pytest.raises(ClientError):
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "b"}, "body": text(10)}}},
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": {"pk": {"S": "a"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    # THEN each item costs twice its units (1 KB and 2 KB), and nothing was indexed
    bill = ledger.bill(ledger.calls[0])
    assert (bill.write_units, bill.index_write_units) == (2 * 1 + 2 * 2, 0)


def test_reads_are_billed_by_what_they_read(dynamodb: Any) -> None:
    for key in ("a", "b", "c"):
        dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": key}, "body": text(3000)})
    with BilledCalls() as ledger:
        dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "a"}}, ConsistentRead=True)
        dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "a"}})
        dynamodb.scan(TableName=TABLE, ConsistentRead=True)  # 9 KB: 3 units
    assert [ledger.bill(c).read_units for c in ledger.calls] == [1.0, 0.5, 3.0]


def test_a_batch_read_pays_each_key_asked_found_or_not_at_its_tables_consistency(
    dynamodb: Any,
) -> None:
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "a"}, "body": text(5000)})
    with BilledCalls() as ledger:
        # WHEN a consistent batch read asks for a 5 KB item and one that is not there
        dynamodb.batch_get_item(
            RequestItems={
                TABLE: {"Keys": [{"pk": {"S": "a"}}, {"pk": {"S": "gone"}}], "ConsistentRead": True}
            }
        )
    # THEN 2 units for the item, 1 for the missing key
    assert ledger.bill(ledger.calls[0]).read_units == 3.0


def test_an_invocation_keeps_its_own_time_and_the_latency_of_its_calls(dynamodb: Any) -> None:
    with BilledCalls() as ledger, timed_invocation(ledger, "query_consumer"):
        dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "a"}})
        dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "a"}})
    (invocation,) = ledger.invocations
    assert (invocation.function, invocation.calls, invocation.waits_ms) == (
        "query_consumer",
        2,
        10.0,
    )
    inside = sum(ledger.bill(c).cpu_seconds for c in ledger.calls)
    assert invocation.own_cpu_seconds >= 0
    assert inside > 0


def test_the_time_moto_takes_to_answer_is_not_the_functions(dynamodb: Any) -> None:
    # GIVEN a read: the ledger reads nothing of its own around it
    with BilledCalls() as ledger:
        dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "a"}})
    # THEN moto's answer is timed, and taken out of the function's CPU
    bill = ledger.bill(ledger.calls[0])
    assert bill.moto_seconds > 0
    assert bill.cpu_seconds >= bill.moto_seconds
