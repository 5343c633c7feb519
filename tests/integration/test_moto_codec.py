"""moto's model-walking request parser and DynamoDB response writer, and emulator.moto_codec.

Each test compares what moto's own code gives with what the replacement gives, on requests
botocore builds and on answers moto's DynamoDB makes: the same values, of the same types, in
the same order (``repr`` compares all three).
"""

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.serialize import create_serializer
from moto import mock_aws
from moto.core.parse import JSONParser, RequestParser
from moto.core.serialize import AttributePicker, JSONSerializer, XFormedAttributePicker
from moto.core.utils import get_service_model

from emulator import moto_patches
from tests.integration.moto_helpers import counting, create_ranged_table

BINARY = b"\x00\xffbinary"
ITEM: dict[str, Any] = {
    "pk": {"S": "p#1"},
    "sk": {"N": "7"},
    "text": {"S": "héllo"},
    "blob": {"B": BINARY},
    "strings": {"SS": ["a", "b"]},
    "numbers": {"NS": ["1", "2.5"]},
    "blobs": {"BS": [b"x", BINARY]},
    "nested": {
        "M": {
            "flag": {"BOOL": True},
            "nothing": {"NULL": True},
            "list": {"L": [{"S": "x"}, {"N": "1"}, {"B": BINARY}, {"M": {"deep": {"BS": [b"y"]}}}]},
        }
    },
    "empty_map": {"M": {}},
    "empty_list": {"L": []},
}


def request_body(service: str, operation: str, params: dict[str, Any]) -> bytes:
    """The body botocore sends for ``operation`` with ``params``."""
    model = get_service_model(service)
    request = create_serializer(model.protocol, include_validation=False).serialize_to_request(
        params, model.operation_model(operation)
    )
    body: bytes = request["body"]
    return body


def parse(service: str, operation: str, body: bytes | str) -> Any:
    """moto's parse of a JSON-protocol body, as BaseResponse.parse_parameters makes it."""
    operation_model = get_service_model(service).operation_model(operation)
    return JSONParser(operation_model).parse(
        {"body": body, "headers": {}, "method": "POST", "url_path": "/", "url_params": {}}  # type: ignore[typeddict-item]
    )


def both(call: Callable[[], Any]) -> tuple[Any, Any]:
    """``call()`` with moto's own code, then with the replacement."""
    with moto_patches.unpatched():
        own = call()
    with moto_patches.applied("codec"):
        replaced = call()
    return own, replaced


REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "dynamodb",
        "TransactWriteItems",
        {
            "TransactItems": [
                {
                    "Put": {
                        "TableName": "t",
                        "Item": ITEM,
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Update": {
                        "TableName": "t",
                        "Key": {"pk": {"S": "p#2"}, "sk": {"N": "1"}},
                        "UpdateExpression": "SET #s = :v",
                        "ExpressionAttributeNames": {"#s": "sent"},
                        "ExpressionAttributeValues": {":v": {"BOOL": True}, ":b": {"B": b"z"}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
                {"Delete": {"TableName": "t", "Key": {"pk": {"S": "p#3"}, "sk": {"N": "2"}}}},
                {
                    "ConditionCheck": {
                        "TableName": "t",
                        "Key": {"pk": {"S": "p#4"}, "sk": {"N": "3"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ],
            "ClientRequestToken": "token",
        },
    ),
    (
        "dynamodb",
        "Query",
        {
            "TableName": "t",
            "IndexName": "by-flag",
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": "p#1"}},
            "ExclusiveStartKey": {"pk": {"S": "p#1"}, "sk": {"N": "3"}},
            "Limit": 25,
            "ScanIndexForward": False,
            "Select": "COUNT",
            "ConsistentRead": True,
        },
    ),
    (
        "dynamodb",
        "BatchWriteItem",
        {
            "RequestItems": {
                "t": [
                    {"PutRequest": {"Item": ITEM}},
                    {"DeleteRequest": {"Key": {"pk": {"S": "p#9"}, "sk": {"N": "9"}}}},
                ]
            }
        },
    ),
    (
        "dynamodb",
        "RestoreTableToPointInTime",  # a timestamp member
        {
            "SourceTableName": "t",
            "TargetTableName": "u",
            "RestoreDateTime": datetime(2026, 12, 1, 10, 30, 15, 250000, tzinfo=UTC),
            "ProvisionedThroughputOverride": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 2},
        },
    ),
    (
        "dynamodb",
        "UpdateTableReplicaAutoScaling",  # a double member
        {
            "TableName": "t",
            "ProvisionedWriteCapacityAutoScalingUpdate": {
                "ScalingPolicyUpdate": {
                    "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 70.5}
                }
            },
        },
    ),
    ("dynamodbstreams", "GetRecords", {"ShardIterator": "it", "Limit": 100}),
    (
        "sqs",
        "SendMessageBatch",
        {
            "QueueUrl": "http://q",
            "Entries": [
                {
                    "Id": "1",
                    "MessageBody": "{}",
                    "DelaySeconds": 2,
                    "MessageAttributes": {
                        "type": {"DataType": "String", "StringValue": "PostCreated"},
                        "raw": {"DataType": "Binary", "BinaryValue": BINARY},
                    },
                }
            ],
        },
    ),
    (
        "sqs",
        "ReceiveMessage",
        {
            "QueueUrl": "http://q",
            "MaxNumberOfMessages": 10,
            "WaitTimeSeconds": 20,
            "MessageAttributeNames": ["All"],
        },
    ),
]


@pytest.mark.parametrize(
    ("service", "operation", "params"), REQUESTS, ids=[f"{s}.{o}" for s, o, _ in REQUESTS]
)
def test_a_request_parses_as_moto_parses_it(
    service: str, operation: str, params: dict[str, Any]
) -> None:
    # GIVEN the body botocore sends
    body = request_body(service, operation, params)

    # WHEN moto's parser and the compiled one parse it
    own, replaced = both(lambda: parse(service, operation, body))

    # THEN the values, their types (bytes, int, float, datetime) and their order are the same
    assert repr(replaced) == repr(own)


@pytest.mark.parametrize(
    "body",
    [
        # members in another order than the model's, unknown keys, nulls, and a one-key value
        b'{"Key": {"sk": {"N": "1"}, "pk": {"S": "x", "N": null}}, "TableName": "t",'
        b' "Unknown": 1, "ConsistentRead": null, "ProjectionExpression": "a"}',
        b'{"TableName": "t", "Key": {"pk": {"Nope": "x"}}}',
        b"",
        b"not json",
        b'{"TableName": "t", "Key": null}',
    ],
)
def test_an_odd_body_parses_as_moto_parses_it(body: bytes) -> None:
    own, replaced = both(lambda: parse("dynamodb", "GetItem", body))

    assert repr(replaced) == repr(own)


@pytest.mark.parametrize(
    "body",
    [
        b'{"TableName": "t", "Key": {"pk": ["S", "x"]}}',
        b'{"TableName": "t", "Key": {"pk": 5}}',
        b'{"TableName": "t", "Key": {"pk": true}}',
        b"5",
    ],
)
def test_a_body_that_is_no_object_fails_as_moto_fails(body: bytes) -> None:
    def attempt() -> str:
        with pytest.raises(Exception) as failure:  # noqa: PT011 (which one is what is compared)
            parse("dynamodb", "GetItem", body)
        return f"{failure.typename}: {failure.value}"

    own, replaced = both(attempt)

    assert replaced == own


def test_parsing_no_longer_walks_the_model_value_by_value(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a transaction of 25 items of 11 attributes each
    items = [{"Put": {"TableName": "t", "Item": dict(ITEM, pk={"S": f"p#{i}"})}} for i in range(25)]
    body = request_body("dynamodb", "TransactWriteItems", {"TransactItems": items})
    walks = counting(monkeypatch, RequestParser, "_parse_shape")

    # WHEN moto's parser and the compiled one parse it
    own, replaced = both(
        lambda: (len(walks), parse("dynamodb", "TransactWriteItems", body), len(walks))
    )

    # THEN moto's looks up a handler for every value; the compiled one for none
    assert own[2] - own[0] > 25 * 11
    assert replaced[2] == replaced[0]
    assert replaced[1] == own[1]


def dynamodb_answers() -> list[tuple[str, bytes]]:
    """The raw bodies moto's DynamoDB answers a story of item reads and writes with."""
    bodies: list[tuple[str, bytes]] = []

    def keep(event_name: str, response_dict: dict[str, Any], **_: Any) -> None:
        bodies.append((event_name.rsplit(".", 1)[-1], response_dict["body"]))

    with mock_aws():
        client = boto3.client("dynamodb")
        create_ranged_table(client)
        client.meta.events.register("before-parse.dynamodb.*", keep)  # after the dated answer
        key = {"pk": {"S": "p#1"}, "sk": {"N": "7"}}
        client.put_item(TableName="r", Item=ITEM)
        client.put_item(TableName="r", Item=dict(ITEM, sk={"N": "8"}), ReturnValues="ALL_OLD")
        client.put_item(TableName="r", Item=ITEM, ReturnValues="ALL_OLD")
        client.get_item(TableName="r", Key=key)
        client.query(
            TableName="r",
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "p#1"}},
            Limit=1,
        )
        client.query(
            TableName="r",
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "p#1"}},
            ProjectionExpression="#n, blobs",
            ExpressionAttributeNames={"#n": "nested"},
        )
        client.scan(TableName="r")
        client.batch_get_item(RequestItems={"r": {"Keys": [key]}})
        client.transact_get_items(TransactItems=[{"Get": {"TableName": "r", "Key": key}}])
        client.update_item(
            TableName="r",
            Key=key,
            UpdateExpression="SET extra = :e REMOVE strings",
            ExpressionAttributeValues={":e": {"L": [{"NULL": True}, {"BS": [b"q"]}]}},
            ReturnValues="ALL_NEW",
        )
        with pytest.raises(ClientError):
            client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": "r",
                            "Item": ITEM,
                            "ConditionExpression": "attribute_not_exists(pk)",
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    }
                ]
            )
        with pytest.raises(ClientError):
            client.put_item(
                TableName="r",
                Item=ITEM,
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
    return bodies


def test_dynamodb_answers_are_written_as_moto_writes_them(aws_env: None) -> None:
    # WHEN the same story of reads and writes runs on moto's own writer and on the replacement
    own, replaced = both(dynamodb_answers)

    # THEN every answer is the same, byte for byte
    assert [name for name, _ in replaced] == [name for name, _ in own]
    for (name, mine), (_, theirs) in zip(replaced, own, strict=True):
        assert mine == theirs, name
    # AND the story did return items with every kind of attribute value, binaries included
    answers = {name: json.loads(body) for name, body in own}
    assert answers["GetItem"]["Item"]["blobs"] == {"BS": ["eA==", "AP9iaW5hcnk="]}
    assert answers["TransactWriteItems"]["CancellationReasons"][0]["Item"]["pk"] == {"S": "p#1"}


@pytest.mark.parametrize(
    "value",
    [
        {"s": "lower-case member name, which moto's picker finds by an alias"},
        {"S": 5},
        {"N": Decimal("1.5")},
        {"B": bytearray(b"x")},
        {"SS": ["a", None]},
        {"L": [None, {"S": "x"}]},
        {"M": {"gone": None, "kept": {"S": "x"}}},
        {"BOOL": 1},
        {"M": {"": {"S": "an empty attribute name, whose level moto's writer drops"}}},
    ],
    ids=str,
)
def test_an_unusual_attribute_value_is_written_as_moto_writes_it(value: dict[str, Any]) -> None:
    operation = get_service_model("dynamodb").operation_model("GetItem")

    def write() -> Any:
        serializer = JSONSerializer(operation, value_picker=XFormedAttributePicker())
        return serializer.serialize({"Item": {"a": value}})["body"]

    own, replaced = both(write)

    assert replaced == own


def test_writing_no_longer_picks_each_member(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a page of 50 items, of 11 attributes each
    operation = get_service_model("dynamodb").operation_model("Query")
    page = {"Items": [ITEM] * 50, "Count": 50, "ScannedCount": 50}
    picks = counting(monkeypatch, AttributePicker, "__call__")

    def write() -> tuple[int, Any, int]:
        serializer = JSONSerializer(operation, value_picker=XFormedAttributePicker())
        return len(picks), serializer.serialize(page)["body"], len(picks)

    # WHEN moto's writer and the replacement write it
    own, replaced = both(write)

    # THEN moto's picks every member of every attribute value; the replacement only the page's
    assert own[2] - own[0] > 50 * 11 * 10
    assert replaced[2] - replaced[0] < 10
    assert replaced[1] == own[1]
