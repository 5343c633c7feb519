"""The outbox's unsent index, spread over shards and holding keys only: records land on many
partition keys, the sweeper finds them on every shard oldest first, and what it returns is
read from the table itself. Against the real table on moto."""

from datetime import UTC, datetime, timedelta
from typing import Any

from emulator.stack import Stack
from emulator.template import load
from functions import aws, names, outbox, settings
from tests.helpers import backdate_outbox, scan, stored_posts

FAR_FUTURE = datetime.now(UTC) + timedelta(days=1)


def _table() -> str:
    return settings.load().table(names.OUTBOX_TABLE)


def test_records_are_spread_over_the_shards_by_their_event_id(deployed: Stack) -> None:
    ids = stored_posts(64)
    shards = {r["event_id"]: r["unsent"] for r in scan(names.OUTBOX_TABLE)}
    assert all(shards[i] == outbox.unsent_shard(i) for i in ids)
    assert set(shards.values()) <= set(outbox.unsent_shards())
    # 64 records on 16 shards: no shard holds more than a fifth of them (a constant key
    # would hold them all), and most shards are used
    counts = [list(shards.values()).count(s) for s in set(shards.values())]
    assert max(counts) <= 64 // 5
    assert len(counts) >= names.OUTBOX_UNSENT_SHARDS // 2


def test_the_shard_of_an_id_is_stable_across_processes() -> None:
    # (sha256, not Python's hash, which is salted per process)
    assert outbox.unsent_shard("01J0000000000000000000000A") == "unsent#03"


def test_the_sweeper_finds_the_oldest_records_of_every_shard(deployed: Stack) -> None:
    # GIVEN 40 unsent records on many shards, the first 20 of them an hour older
    older = stored_posts(20)
    backdate_outbox(3600)
    newer = stored_posts(20, prefix="later")
    assert len({outbox.unsent_shard(i) for i in older}) > 1
    # WHEN the sweeper reads 25, then everything
    first = [r.event_id for r in outbox.unsent(_table(), FAR_FUTURE, limit=25)]
    every = [r.event_id for r in outbox.unsent(_table(), FAR_FUTURE)]
    # THEN it got the 20 older ones first (from every shard), then the oldest of the others
    assert set(first[:20]) == set(older)
    assert set(first[20:]) <= set(newer)
    assert len(first) == 25
    assert set(every) == set(older) | set(newer)
    created = [r.created_at for r in outbox.unsent(_table(), FAR_FUTURE)]
    assert created == sorted(created)
    # AND each record comes whole (the index holds keys only): the payload the sweeper publishes
    assert all(
        r.payload and r.event_type == "PostCreated" for r in outbox.unsent(_table(), FAR_FUTURE)
    )


def test_a_record_sent_after_the_index_was_read_is_left_out(deployed: Stack) -> None:
    # GIVEN two unsent records, one of them sent between the index query and the table read
    sent, kept = stored_posts(2)
    client = aws.client("dynamodb")

    def send_first(**_: Any) -> None:
        client.meta.events.unregister("before-call.dynamodb.BatchGetItem", send_first)
        outbox.mark_sent(_table(), [sent])

    client.meta.events.register("before-call.dynamodb.BatchGetItem", send_first)
    # WHEN the sweeper reads the unsent records
    found = [r.event_id for r in outbox.unsent(_table(), FAR_FUTURE)]
    # THEN only the one still unsent is returned
    assert found == [kept]


def test_the_index_projects_keys_only() -> None:
    [index] = load()["Resources"]["OutboxTable"]["Properties"]["GlobalSecondaryIndexes"]
    assert index["IndexName"] == names.OUTBOX_UNSENT_INDEX
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}


def test_the_backlog_is_counted_over_every_shard(deployed: Stack) -> None:
    ids = stored_posts(30)
    backdate_outbox(60)
    count, oldest = outbox.oldest_unsent(_table())
    assert count == 30
    assert oldest is not None
    assert 59 <= outbox.oldest_unsent_age(_table()) <= 120
    outbox.mark_sent(_table(), ids)
    assert outbox.oldest_unsent(_table()) == (0, None)
