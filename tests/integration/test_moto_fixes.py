"""The canaries of moto's TransactWriteItems defects (docs/moto-fixes.md), and the speed
patches of emulator.moto_fixes, which answer as moto does.

Each test creates its own tables; the patches apply only through ``moto_patches``.
"""

import re
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.server import ThreadedMotoServer

from emulator import moto_patches
from tests.integration.moto_helpers import (
    MOTO_FIXES,
    counting,
    create_indexed_table,
    create_ranged_table,
    create_table,
    on_moto_then_patched,
    trim_horizon,
)

CONDITION_FAILED = {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}


@pytest.fixture
def unpatched_moto(aws_env: None) -> Iterator[None]:
    with moto_patches.unpatched(), mock_aws():
        yield


@pytest.fixture
def patched_moto(aws_env: None) -> Iterator[None]:
    with moto_patches.applied(*MOTO_FIXES), mock_aws():
        yield


@pytest.fixture
def patched_moto_server(aws_env: None) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    endpoint = f"http://127.0.0.1:{port}"
    with moto_patches.applied(*MOTO_FIXES):
        server.start()
        try:
            yield endpoint
        finally:
            requests.post(f"{endpoint}/moto-api/reset", timeout=10)
            server.stop()


def read_stream(streams: Any, iterator: str) -> list[tuple[str, str]]:
    """(event name, pk) of every record from ``iterator`` on, in order."""
    records: list[tuple[str, str]] = []
    while True:
        page = streams.get_records(ShardIterator=iterator)
        if not page["Records"]:
            return records
        records += [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in page["Records"]]
        iterator = page["NextShardIterator"]


def put(table: str, pk: str, condition: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": table, "Item": {"pk": {"S": pk}}}
    if condition is not None:
        op["ConditionExpression"] = condition
    return {"Put": op}


def stored_keys(dynamodb: Any, table: str) -> list[str]:
    pages = dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return sorted(item["pk"]["S"] for page in pages for item in page["Items"])


def cancel_a_transaction_then_put(dynamodb: Any) -> dict[str, Any]:
    """WHEN [Put A, Put B if B exists] is cancelled (B does not), then a plain Put C succeeds.

    Returns the cancellation's error response.
    """
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(
            TransactItems=[put("t", "A"), put("t", "B", "attribute_exists(pk)")]
        )
    response: dict[str, Any] = cancelled.value.response
    assert response["Error"]["Code"] == "TransactionCanceledException"
    dynamodb.put_item(TableName="t", Item={"pk": {"S": "C"}})
    return response


@pytest.mark.usefixtures("unpatched_moto")
def test_unpatched_moto_leaves_a_ghost_stream_record() -> None:
    """Documents moto's defect: a cancelled transaction publishes a write that never happened.

    moto deep-copies the table before the transaction and, on cancellation, swaps in the copy:
    the old shard keeps the record for A, and later writes go to the copy's shard. If this test
    fails, moto has fixed the defect upstream: drop the ``dynamodb-transactions`` patch.
    """
    # GIVEN a table with a stream, and an iterator taken before anything happens
    dynamodb, streams = boto3.client("dynamodb"), boto3.client("dynamodbstreams")
    iterator = trim_horizon(streams, create_table(dynamodb, "t"))

    # WHEN a transaction is cancelled, then a plain put succeeds
    cancel_a_transaction_then_put(dynamodb)

    # THEN the old iterator shows the ghost A and never sees C
    assert read_stream(streams, iterator) == [("INSERT", "A")]
    assert stored_keys(dynamodb, "t") == ["C"]


@pytest.mark.usefixtures("patched_moto")
def test_patched_cancelled_transaction_leaves_no_stream_record_and_loses_no_write() -> None:
    # GIVEN a table with a stream, and an iterator taken before anything happens
    dynamodb, streams = boto3.client("dynamodb"), boto3.client("dynamodbstreams")
    iterator = trim_horizon(streams, create_table(dynamodb, "t"))

    # WHEN a transaction is cancelled, then a plain put succeeds
    response = cancel_a_transaction_then_put(dynamodb)

    # THEN only C happened, the old iterator sees it, and the reasons blame the condition on B
    assert read_stream(streams, iterator) == [("INSERT", "C")]
    assert stored_keys(dynamodb, "t") == ["C"]
    assert response["CancellationReasons"] == [{"Code": "None"}, CONDITION_FAILED]


@pytest.mark.usefixtures("patched_moto")
def test_patched_transaction_commits_all_writes_and_streams_them() -> None:
    # GIVEN two tables with streams, and an iterator on each
    dynamodb, streams = boto3.client("dynamodb"), boto3.client("dynamodbstreams")
    iterators = {name: trim_horizon(streams, create_table(dynamodb, name)) for name in ("t", "u")}

    # WHEN one transaction writes to both, one write conditional
    dynamodb.transact_write_items(
        TransactItems=[put("t", "A"), put("u", "B", "attribute_not_exists(pk)")]
    )

    # THEN both items are stored and each stream has its record
    assert stored_keys(dynamodb, "t") == ["A"]
    assert stored_keys(dynamodb, "u") == ["B"]
    assert read_stream(streams, iterators["t"]) == [("INSERT", "A")]
    assert read_stream(streams, iterators["u"]) == [("INSERT", "B")]


@pytest.mark.usefixtures("patched_moto")
def test_patched_condition_failure_returns_old_item() -> None:
    # GIVEN a stored item
    dynamodb = boto3.client("dynamodb")
    create_table(dynamodb, "t")
    old = {"pk": {"S": "A"}, "version": {"N": "1"}}
    dynamodb.put_item(TableName="t", Item=old)

    # WHEN a transaction puts it again only if absent, asking for the old item on failure
    overwrite = put("t", "A", "attribute_not_exists(pk)")
    overwrite["Put"]["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(TransactItems=[overwrite])

    # THEN the reason carries the old item, which is unchanged
    assert cancelled.value.response["CancellationReasons"] == [{**CONDITION_FAILED, "Item": old}]
    assert dynamodb.get_item(TableName="t", Key={"pk": {"S": "A"}})["Item"] == old


def test_a_transaction_update_that_creates_an_item_streams_one_record_not_moto_s_two(
    aws_env: None,
) -> None:
    """Documents moto's defect: an Update that creates an item streams the bare key first."""

    def story() -> list[tuple[str, list[str]]]:
        # GIVEN a table with a stream, and an iterator
        dynamodb, streams = boto3.client("dynamodb"), boto3.client("dynamodbstreams")
        iterator = trim_horizon(streams, create_table(dynamodb, "t"))
        # WHEN a transaction's Update creates an item
        update = {"TableName": "t", "Key": {"pk": {"S": "A"}}, "UpdateExpression": "SET v = :v"}
        update["ExpressionAttributeValues"] = {":v": {"S": "x"}}
        dynamodb.transact_write_items(TransactItems=[{"Update": update}])
        records = streams.get_records(ShardIterator=iterator)["Records"]
        return [(r["eventName"], sorted(r["dynamodb"]["NewImage"])) for r in records]

    with moto_patches.unpatched(), mock_aws():
        theirs = story()
    with moto_patches.applied("dynamodb-transactions"), mock_aws():
        mine = story()
    # THEN moto streams two INSERTs, the first of a bare key; fixed, one INSERT of the item
    assert theirs == [("INSERT", ["pk"]), ("INSERT", ["pk", "v"])]
    assert mine == [("INSERT", ["pk", "v"])]


def claim(table: str, pk: str) -> dict[str, Any]:
    """An Update like the publisher's claim: a condition every item of a batch shares."""
    return {
        "Update": {
            "TableName": table,
            "Key": {"pk": {"S": pk}},
            "UpdateExpression": "SET claimed = :now ADD tries :one REMOVE #unsent",
            "ConditionExpression": "attribute_not_exists(claimed)",
            "ExpressionAttributeNames": {"#unsent": "unsent"},
            "ExpressionAttributeValues": {":now": {"N": "7"}, ":one": {"N": "1"}},
        }
    }


def images(streams: Any, iterator: str) -> list[tuple[str, Any, Any]]:
    """(event name, old image, new image) of every record from ``iterator`` on."""
    records = streams.get_records(ShardIterator=iterator)["Records"]
    return [
        (r["eventName"], r["dynamodb"].get("OldImage"), r["dynamodb"].get("NewImage"))
        for r in records
    ]


def test_transaction_updates_leave_what_update_item_leaves_with_one_record_each(
    patched_moto: None,
) -> None:
    # GIVEN a stored item in table t, the same item in table u, and an iterator on t
    dynamodb, streams = boto3.client("dynamodb"), boto3.client("dynamodbstreams")
    iterator = trim_horizon(streams, create_table(dynamodb, "t"))
    create_table(dynamodb, "u")
    old = {"pk": {"S": "A"}, "unsent": {"S": "yes"}, "tries": {"N": "1"}}
    for table in ("t", "u"):
        dynamodb.put_item(TableName=table, Item=old)
    iterator = streams.get_records(ShardIterator=iterator)["NextShardIterator"]  # past the put

    # WHEN a transaction updates A and creates B in t, and plain UpdateItem does the same in u
    dynamodb.transact_write_items(TransactItems=[claim("t", "A"), claim("t", "B")])
    for pk in ("A", "B"):
        dynamodb.update_item(**claim("u", pk)["Update"])

    # THEN t holds what UpdateItem left in u, and its stream has one record per write
    def stored(table: str) -> list[Any]:
        return sorted(dynamodb.scan(TableName=table)["Items"], key=lambda i: i["pk"]["S"])

    new_a = {"pk": {"S": "A"}, "claimed": {"N": "7"}, "tries": {"N": "2"}}
    assert (
        stored("t")
        == stored("u")
        == [new_a, {"pk": {"S": "B"}, "claimed": {"N": "7"}, "tries": {"N": "1"}}]
    )
    assert images(streams, iterator) == [
        ("MODIFY", old, new_a),
        ("INSERT", None, {"pk": {"S": "B"}, "claimed": {"N": "7"}, "tries": {"N": "1"}}),
    ]


STORED: dict[str, Any] = {
    "pk": {"S": "A"},
    "text": {"S": "x"},
    "n": {"N": "1"},
    "bin": {"B": b"\x00\x01"},
    "m": {"M": {"b": {"B": b"\x02"}, "l": {"L": [{"S": "y"}]}}},
    "ss": {"SS": ["p", "q"]},
    "unsent": {"S": "yes"},
}


def stored_and_an_update(dynamodb: Any, expression: str, values: Any) -> dict[str, Any]:
    """STORED in an indexed table ``t``, and a transaction's Update of it."""
    create_indexed_table(dynamodb, "t")
    dynamodb.put_item(TableName="t", Item=STORED)
    return {
        "TableName": "t",
        "Key": {"pk": {"S": "A"}},
        "UpdateExpression": expression,
        "ExpressionAttributeValues": values,
    }


VALUES: dict[str, Any] = {
    ":empty": {"S": ""},
    ":s": {"S": "new"},
    ":n": {"N": "-12.5"},
    ":t": {"BOOL": True},
    ":null": {"NULL": True},
    ":set": {"SS": ["z"]},
}
SIMPLE = [
    "SET sent = :t REMOVE #unsent",
    "SET claimed_at = :n",
    "SET a = :s, b = :n, c = :t, d = :null",
    "SET #text = :s",
    "REMOVE gone, m",
    "set lowered = :s remove #unsent",
    "REMOVE #unsent SET z = :s, #text = :n",
    "SET #unsent = :s",
    "SET e = :empty",
]
NOT_SIMPLE = [
    "SET a = if_not_exists(a, :s)",
    "SET a = :set",
    "SET a = :s ADD n :n",
]
NOT_SIMPLE_ON_STORED = ["SET n = n + :n", "SET m.b = :s", "SET m.l[0] = :s"]


@pytest.mark.parametrize(
    ("expression", "exists"),
    [(e, True) for e in SIMPLE + NOT_SIMPLE + NOT_SIMPLE_ON_STORED]
    + [(e, False) for e in SIMPLE + NOT_SIMPLE],
)
def test_a_transaction_update_leaves_what_update_item_leaves(
    patched_moto: None, expression: str, exists: bool
) -> None:
    # GIVEN the same item (or none) in t and in u
    dynamodb, streams = boto3.client("dynamodb"), boto3.client("dynamodbstreams")
    iterators = {}
    for table in ("t", "u"):
        iterators[table] = trim_horizon(streams, create_indexed_table(dynamodb, table))
        if exists:
            dynamodb.put_item(TableName=table, Item=STORED)
            page = streams.get_records(ShardIterator=iterators[table])
            iterators[table] = page["NextShardIterator"]  # past the put
    names = {n: n[1:] for n in ("#unsent", "#text") if n in expression}
    values = {k: v for k, v in VALUES.items() if re.search(f"{k}\\b", expression)}
    update = {"Key": {"pk": {"S": "A"}}, "UpdateExpression": expression}
    update |= {"ExpressionAttributeNames": names} if names else {}
    update |= {"ExpressionAttributeValues": values} if values else {}

    # WHEN a transaction makes the update in t, and UpdateItem makes it in u
    dynamodb.transact_write_items(TransactItems=[{"Update": {"TableName": "t", **update}}])
    dynamodb.update_item(TableName="u", **update)

    # THEN both hold the same item, attributes in the same order, and streamed the same images
    def stored(table: str) -> list[tuple[str, Any]]:
        item = dynamodb.get_item(TableName=table, Key={"pk": {"S": "A"}})["Item"]
        return list(item.items())

    assert stored("t") == stored("u")

    def indexed(table: str) -> list[Any]:
        return [
            dynamodb.query(
                TableName=table,
                IndexName="unsent-index",
                KeyConditionExpression="unsent = :u",
                ExpressionAttributeValues={":u": {"S": value}},
            )["Items"]
            for value in ("yes", "new")
        ]

    assert indexed("t") == indexed("u")
    t_images, u_images = images(streams, iterators["t"]), images(streams, iterators["u"])
    assert t_images[-1] == u_images[-1]


@pytest.mark.parametrize(
    ("expression", "values"),
    [
        ("SET pk = :s", {":s": {"S": "B"}}),
        ("SET a = :s, a = :n", {":s": {"S": "B"}, ":n": {"N": "1"}}),
        ("SET a = :s REMOVE a", {":s": {"S": "B"}}),
        ("SET unsent = :n", {":n": {"N": "1"}}),
        ("SET unsent = :empty", {":empty": {"S": ""}}),
        ("SET name = :s", {":s": {"S": "B"}}),
    ],
)
def test_a_refused_transaction_update_is_refused_as_moto_refuses_it(
    aws_env: None, expression: str, values: dict[str, Any]
) -> None:
    def attempt() -> tuple[Any, Any, list[str]]:
        dynamodb = boto3.client("dynamodb")
        update = stored_and_an_update(dynamodb, expression, values)
        with pytest.raises(ClientError) as refused:
            dynamodb.transact_write_items(TransactItems=[{"Update": update}])
        error = refused.value.response
        reasons = error.get("CancellationReasons")
        return error["Error"], reasons, stored_keys(dynamodb, "t")

    # WHEN moto and the patched moto are asked for a transaction update DynamoDB refuses
    theirs, mine = on_moto_then_patched(attempt)

    # THEN both refuse it alike, and change nothing
    assert mine == theirs
    assert mine[2] == ["A"]


@pytest.mark.parametrize(
    ("key", "value", "stored"),
    [
        ({"pk": {"N": "1"}}, {"S": "x"}, False),  # a key of the wrong type, for a new item
        ({"pk": {"S": "new"}}, {"S": "x" * 410_000}, False),  # a new item over 400 KB
        ({"pk": {"S": "A"}}, {"S": "€" * 140_000}, True),  # 140,000 characters, 420 KB
    ],
    ids=["key-type", "new-item-size", "stored-item-size"],
)
def test_a_transaction_whose_update_is_refused_writes_nothing_as_moto(
    aws_env: None, key: dict[str, Any], value: dict[str, Any], stored: bool
) -> None:
    def attempt() -> tuple[str, list[str]]:
        dynamodb = boto3.client("dynamodb")
        create_indexed_table(dynamodb, "t")
        if stored:
            dynamodb.put_item(TableName="t", Item=STORED)
        update = {
            "TableName": "t",
            "Key": key,
            "UpdateExpression": "SET x = :v",
            "ExpressionAttributeValues": {":v": value},
        }
        with pytest.raises(ClientError) as refused:
            dynamodb.transact_write_items(
                TransactItems=[put("t", "before"), {"Update": update}, put("t", "after")]
            )
        return refused.value.response["Error"]["Code"], stored_keys(dynamodb, "t")

    # WHEN moto and the patched moto are asked for a transaction with an update DynamoDB refuses
    theirs, mine = on_moto_then_patched(attempt)

    # THEN both refuse it alike and store none of the transaction's writes
    assert mine == theirs
    assert mine[1] == (["A"] if stored else [])


def test_an_update_whose_item_put_would_refuse_is_refused_before_any_write(
    patched_moto: None,
) -> None:
    # GIVEN a stored item, and an update of its index key to a value over the 2,048 bytes an
    # index key may hold (moto's own UpdateItem takes it; the transaction stores with PutItem)
    dynamodb = boto3.client("dynamodb")
    update = stored_and_an_update(dynamodb, "SET unsent = :v", {":v": {"S": "u" * 3000}})

    # WHEN a transaction puts an item, then makes that update
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=[put("t", "before"), {"Update": update}])

    # THEN it is refused before anything is written: the put is not stored either
    assert stored_keys(dynamodb, "t") == ["A"]


def test_transaction_update_keeps_binary_values_as_update_item_does(patched_moto: None) -> None:
    # GIVEN the same item, with a binary value at the top and one in a map, in t and in u
    dynamodb = boto3.client("dynamodb")
    inner, outer = {"B": b"\x02"}, {"B": b"\x00\x01"}
    binaries: dict[str, Any] = {"bin": outer, "m": {"M": {"b": inner}}}
    for table in ("t", "u"):
        create_table(dynamodb, table)
        dynamodb.put_item(TableName=table, Item={"pk": {"S": "A"}, **binaries})

    # WHEN a transaction updates it in t, and plain UpdateItem in u
    dynamodb.transact_write_items(TransactItems=[claim("t", "A")])
    dynamodb.update_item(**claim("u", "A")["Update"])

    # THEN in both, the binary values still equal what was written, in a condition too
    for table in ("t", "u"):
        dynamodb.update_item(
            TableName=table,
            Key={"pk": {"S": "A"}},
            UpdateExpression="SET checked = :yes",
            ConditionExpression="m.b = :inner AND bin = :outer",
            ExpressionAttributeValues={":yes": {"BOOL": True}, ":inner": inner, ":outer": outer},
        )


def test_patched_concurrent_transactions_lose_no_write(patched_moto_server: str) -> None:
    # GIVEN a threaded moto server, a table with a stream, a stored item, an iterator
    def client(service: str) -> Any:
        return boto3.session.Session().client(service, endpoint_url=patched_moto_server)

    dynamodb, streams = client("dynamodb"), client("dynamodbstreams")
    iterator = trim_horizon(streams, create_table(dynamodb, "t"))
    dynamodb.put_item(TableName="t", Item={"pk": {"S": "taken"}})

    def worker(number: int) -> list[str]:
        """25 committed transactions of two writes, and 5 cancelled ones in between."""
        worker_dynamodb = client("dynamodb")
        committed: list[str] = []
        for i in range(25):
            keys = [f"item-{number}-{i}", f"outbox-{number}-{i}"]
            worker_dynamodb.transact_write_items(
                TransactItems=[put("t", keys[0]), put("t", keys[1], "attribute_not_exists(pk)")]
            )
            committed += keys
            if i % 5 == 0:
                with pytest.raises(ClientError, match="TransactionCanceledException"):
                    worker_dynamodb.transact_write_items(
                        TransactItems=[
                            put("t", f"ghost-{number}-{i}"),
                            put("t", "taken", "attribute_not_exists(pk)"),
                        ]
                    )
        return committed

    # WHEN 4 threads run transactions at the same time
    with ThreadPoolExecutor(max_workers=4) as pool:
        committed = [key for keys in pool.map(worker, range(4)) for key in keys]

    # THEN every committed write is stored, and streamed exactly once, with no ghost
    assert len(committed) == 200
    expected = sorted(["taken", *committed])
    assert stored_keys(dynamodb, "t") == expected
    records = read_stream(streams, iterator)
    assert sorted(records) == [("INSERT", key) for key in expected]


# -- Query ----------------------------------------------------------------------------------

BIG_PARTITIONS, BIG_ROWS = 40, 50  # 2,000 items in other partitions


def fill(dynamodb: Any, partitions: int, rows: int) -> None:
    for p in range(partitions):
        requests = [
            {
                "PutRequest": {
                    "Item": {
                        "pk": {"S": f"p{p}"},
                        "sk": {"N": str(r)},
                        "at": {"S": f"{(r * 7) % rows:04d}"},
                        **({"flag": {"S": "yes"}} if (p + r) % 9 == 0 else {}),
                    }
                }
            }
            for r in range(rows)
        ]
        for start in range(0, len(requests), 25):
            dynamodb.batch_write_item(RequestItems={"r": requests[start : start + 25]})


QUERIES: list[dict[str, Any]] = [
    {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p3"}}},
    {
        "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
        "ExpressionAttributeValues": {":p": {"S": "p1"}, ":a": {"N": "5"}, ":b": {"N": "9"}},
    },
    {
        "KeyConditionExpression": "pk = :p AND sk > :a",
        "ExpressionAttributeValues": {":p": {"S": "p2"}, ":a": {"N": "40"}},
        "ScanIndexForward": False,
        "Limit": 3,
    },
    {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "none"}}},
    {
        "IndexName": "flagged",
        "KeyConditionExpression": "flag = :f AND #at < :t",
        "ExpressionAttributeNames": {"#at": "at"},
        "ExpressionAttributeValues": {":f": {"S": "yes"}, ":t": {"S": "0020"}},
    },
    {
        "IndexName": "flagged",
        "KeyConditionExpression": "flag = :f",
        "ExpressionAttributeValues": {":f": {"S": "yes"}},
        "Limit": 1,
    },
]


def answers(dynamodb: Any, queries: list[dict[str, Any]] = QUERIES) -> list[Any]:
    """Every query of ``queries``, paged to the end: items, counts and page keys."""
    results = []
    for query in queries:
        pages = []
        arguments = dict(query, TableName="r")
        while True:
            page = dynamodb.query(**arguments)
            page.pop("ResponseMetadata")
            pages.append(page)
            if "LastEvaluatedKey" not in page or len(pages) > 60:
                break
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        results.append(pages)
    return results


def comparisons_of_one_query(monkeypatch: pytest.MonkeyPatch, dynamodb: Any) -> int:
    """How many key comparisons moto makes to read one partition of five items."""
    dynamodb.batch_write_item(
        RequestItems={
            "r": [
                {"PutRequest": {"Item": {"pk": {"S": "small"}, "sk": {"N": str(i)}}}}
                for i in range(5)
            ]
        }
    )
    counted = [0]
    less_than = DynamoType.__lt__

    def counting(self: DynamoType, other: DynamoType) -> bool:
        counted[0] += 1
        return less_than(self, other)

    monkeypatch.setattr(DynamoType, "__lt__", counting)
    items = dynamodb.query(
        TableName="r",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "small"}},
    )["Items"]
    monkeypatch.setattr(DynamoType, "__lt__", less_than)
    assert [int(i["sk"]["N"]) for i in items] == [0, 1, 2, 3, 4]
    return counted[0]


def test_unpatched_query_visits_the_whole_table(
    unpatched_moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Documents moto's defect: reading 5 items sorts all 2,005 of the table first.

    If this test fails, moto narrows its queries itself: drop the Query part of the fix.
    """
    dynamodb = boto3.client("dynamodb")
    create_ranged_table(dynamodb)
    fill(dynamodb, BIG_PARTITIONS, BIG_ROWS)
    assert comparisons_of_one_query(monkeypatch, dynamodb) > BIG_PARTITIONS * BIG_ROWS


def test_patched_query_visits_only_its_partition(
    patched_moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    dynamodb = boto3.client("dynamodb")
    create_ranged_table(dynamodb)
    fill(dynamodb, BIG_PARTITIONS, BIG_ROWS)
    assert comparisons_of_one_query(monkeypatch, dynamodb) < 20


def test_patched_queries_answer_as_moto_does(aws_env: None) -> None:
    """Table and index queries, ranges, order, limits and paging: the same answers either way."""
    with moto_patches.unpatched(), mock_aws():
        dynamodb = boto3.client("dynamodb")
        create_ranged_table(dynamodb)
        fill(dynamodb, 6, 50)
        expected = answers(dynamodb)
    with moto_patches.applied(*MOTO_FIXES), mock_aws():
        dynamodb = boto3.client("dynamodb")
        create_ranged_table(dynamodb)
        fill(dynamodb, 6, 50)
        assert answers(dynamodb) == expected
    assert sum(len(page["Items"]) for pages in expected for page in pages) > 50


# -- Index queries --------------------------------------------------------------------------

INDEX_VALUES, PER_VALUE = 400, 5  # 2,000 indexed items, 5 in each index partition


def fill_index(dynamodb: Any) -> None:
    """Every item of ``r`` in the ``flagged`` index, ``PER_VALUE`` items to an index value (as
    every view row carries its listing bucket)."""
    requests = [
        {
            "PutRequest": {
                "Item": {
                    "pk": {"S": f"p{n}"},
                    "sk": {"N": "0"},
                    "flag": {"S": f"v{n % INDEX_VALUES}"},
                    "at": {"S": f"{n:05d}"},
                }
            }
        }
        for n in range(INDEX_VALUES * PER_VALUE)
    ]
    for start in range(0, len(requests), 25):
        dynamodb.batch_write_item(RequestItems={"r": requests[start : start + 25]})


def comparisons_of_one_index_query(monkeypatch: pytest.MonkeyPatch, dynamodb: Any) -> int:
    """How many key comparisons moto makes to read one index partition of five items."""

    def query() -> list[str]:
        return [
            i["pk"]["S"]
            for i in dynamodb.query(
                TableName="r",
                IndexName="flagged",
                KeyConditionExpression="flag = :f",
                ExpressionAttributeValues={":f": {"S": "v7"}},
            )["Items"]
        ]

    query()  # the patched moto builds its map of the index on the table's first index query
    counted = [0]
    equal, unequal = DynamoType.__eq__, DynamoType.__ne__

    def counting_equal(self: DynamoType, other: DynamoType) -> bool:
        counted[0] += 1
        return equal(self, other)

    def counting_unequal(self: DynamoType, other: DynamoType) -> bool:
        counted[0] += 1
        return unequal(self, other)

    monkeypatch.setattr(DynamoType, "__eq__", counting_equal)
    monkeypatch.setattr(DynamoType, "__ne__", counting_unequal)
    keys = query()
    monkeypatch.setattr(DynamoType, "__eq__", equal)
    monkeypatch.setattr(DynamoType, "__ne__", unequal)
    assert keys == [f"p{7 + INDEX_VALUES * k}" for k in range(PER_VALUE)]
    return counted[0]


def test_unpatched_index_query_visits_the_whole_table(
    unpatched_moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Documents moto's defect: reading an index partition of 5 items compares the index key
    of all 2,000 items of the table (moto keeps no index).

    If this test fails, moto indexes its items itself: drop the index maps of the fix.
    """
    dynamodb = boto3.client("dynamodb")
    create_ranged_table(dynamodb)
    fill_index(dynamodb)
    assert comparisons_of_one_index_query(monkeypatch, dynamodb) > INDEX_VALUES * PER_VALUE


def test_patched_index_query_visits_only_its_partition(
    patched_moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    dynamodb = boto3.client("dynamodb")
    create_ranged_table(dynamodb)
    fill_index(dynamodb)
    assert comparisons_of_one_index_query(monkeypatch, dynamodb) < 30


INDEX_QUERIES: list[dict[str, Any]] = [
    {
        "IndexName": "flagged",
        "KeyConditionExpression": "flag = :f",
        "ExpressionAttributeValues": {":f": {"S": value}},
    }
    for value in ("yes", "no", "new")
]


def write_every_way(dynamodb: Any) -> None:
    """Move items into, out of and between index partitions with every kind of write."""
    item = {"pk": {"S": "p0"}, "sk": {"N": "0"}, "at": {"S": "0001"}}  # flagged: (0 + 0) % 9
    dynamodb.put_item(TableName="r", Item={**item, "flag": {"S": "no"}})  # to another value
    dynamodb.put_item(TableName="r", Item={**item, "pk": {"S": "p0"}, "sk": {"N": "9"}})  # out
    dynamodb.update_item(  # into the index, on an item that was not in it
        TableName="r",
        Key={"pk": {"S": "p1"}, "sk": {"N": "1"}},
        UpdateExpression="SET flag = :f, #at = :at",
        ExpressionAttributeNames={"#at": "at"},
        ExpressionAttributeValues={":f": {"S": "new"}, ":at": {"S": "0002"}},
    )
    dynamodb.update_item(  # out of the index: its hash key removed
        TableName="r", Key={"pk": {"S": "p1"}, "sk": {"N": "8"}}, UpdateExpression="REMOVE flag"
    )
    dynamodb.update_item(  # a new item, made by an update
        TableName="r",
        Key={"pk": {"S": "fresh"}, "sk": {"N": "0"}},
        UpdateExpression="SET flag = :f, #at = :at",
        ExpressionAttributeNames={"#at": "at"},
        ExpressionAttributeValues={":f": {"S": "yes"}, ":at": {"S": "0003"}},
    )
    dynamodb.delete_item(TableName="r", Key={"pk": {"S": "p2"}, "sk": {"N": "7"}})
    with pytest.raises(ClientError):  # a failed condition changes nothing
        dynamodb.put_item(
            TableName="r",
            Item={**item, "pk": {"S": "p3"}, "sk": {"N": "6"}, "flag": {"S": "new"}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    dynamodb.batch_write_item(
        RequestItems={
            "r": [
                {"PutRequest": {"Item": {**item, "pk": {"S": "p4"}, "flag": {"S": "new"}}}},
                {"DeleteRequest": {"Key": {"pk": {"S": "p4"}, "sk": {"N": "5"}}}},
            ]
        }
    )
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": "r", "Item": {**item, "pk": {"S": "p5"}, "flag": {"S": "no"}}}},
            {
                "Update": {
                    "TableName": "r",
                    "Key": {"pk": {"S": "p5"}, "sk": {"N": "4"}},
                    "UpdateExpression": "SET flag = :f",
                    "ExpressionAttributeValues": {":f": {"S": "no"}},
                }
            },
            {"Delete": {"TableName": "r", "Key": {"pk": {"S": "p1"}, "sk": {"N": "17"}}}},
        ]
    )
    with pytest.raises(ClientError):  # a cancelled transaction changes nothing
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": "r",
                        "Item": {**item, "pk": {"S": "p6"}, "flag": {"S": "no"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": "r",
                        "Key": {"pk": {"S": "absent"}, "sk": {"N": "0"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )


def test_patched_index_follows_every_write(aws_env: None) -> None:
    """Index queries after puts, updates, deletes, batches and transactions that move items
    into, out of and between index partitions: the same answers as moto's own."""
    with moto_patches.unpatched(), mock_aws():
        dynamodb = boto3.client("dynamodb")
        create_ranged_table(dynamodb)
        fill(dynamodb, 6, 50)
        write_every_way(dynamodb)
        expected = answers(dynamodb, QUERIES + INDEX_QUERIES)
    with moto_patches.applied(*MOTO_FIXES), mock_aws():
        dynamodb = boto3.client("dynamodb")
        create_ranged_table(dynamodb)
        fill(dynamodb, 6, 50)
        answers(dynamodb, INDEX_QUERIES)  # the index maps exist before the writes
        write_every_way(dynamodb)
        assert answers(dynamodb, QUERIES + INDEX_QUERIES) == expected
    counts = [sum(len(page["Items"]) for page in pages) for pages in expected[-3:]]
    assert all(counts), counts  # each of "yes", "no" and "new" has items after the writes


def count_story() -> tuple[list[Any], int]:
    """COUNT queries of an index partition and a table partition, paged, filtered, queries for
    the items, paged and projected; and the number of items moto deep-copied to answer them."""
    from moto.dynamodb.models.dynamo_type import Item

    dynamodb = boto3.client("dynamodb")
    create_indexed_table(dynamodb, "t")
    for i in range(120):
        item = {"pk": {"S": f"p{i:03}"}, "n": {"N": str(i)}}
        dynamodb.put_item(TableName="t", Item=item | ({"unsent": {"S": "u"}} if i % 3 else {}))
    answers = []
    with pytest.MonkeyPatch.context() as local:
        copies = counting(local, Item, "__deepcopy__")
        base = {"TableName": "t", "Select": "COUNT"}
        by_unsent = base | {
            "IndexName": "unsent-index",
            "KeyConditionExpression": "unsent = :u",
            "ExpressionAttributeValues": {":u": {"S": "u"}},
        }
        answers.append(dynamodb.query(**by_unsent))
        page = dynamodb.query(**by_unsent, Limit=30)
        answers += [page, dynamodb.query(**by_unsent, ExclusiveStartKey=page["LastEvaluatedKey"])]
        filtered = by_unsent | {
            "FilterExpression": "n > :low",
            "ExpressionAttributeValues": {":u": {"S": "u"}, ":low": {"N": "60"}},
        }
        answers.append(dynamodb.query(**filtered))
        answers.append(
            dynamodb.query(
                **base,
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": {"S": "p007"}},
            )
        )
        # and queries for the items themselves, whole, paged and projected
        by_unsent_items = {k: v for k, v in by_unsent.items() if k != "Select"}
        page = dynamodb.query(**by_unsent_items, Limit=50)
        answers += [
            page,
            dynamodb.query(**by_unsent_items, ExclusiveStartKey=page["LastEvaluatedKey"]),
        ]
        answers.append(dynamodb.query(**by_unsent_items, ProjectionExpression="n"))
    for answer in answers:
        answer.pop("ResponseMetadata")
    return answers, len(copies)


def test_a_query_answers_from_the_live_items_as_moto_answers(aws_env: None) -> None:
    # WHEN the same queries run on moto and on the patched moto
    (theirs, their_copies), (mine, my_copies) = on_moto_then_patched(count_story)

    # THEN the answers are the same (counts, pages, the filter's count, items, projections)
    assert mine == theirs
    assert [a.get("Count") for a in mine] == [80, 30, 50, 40, 1, 50, 30, 80]
    # AND moto copied every item it counted or returned; the patched moto none
    assert their_copies == 80 + 30 + 50 + 80 + 1 + 50 + 30 + 80
    assert my_copies == 0
