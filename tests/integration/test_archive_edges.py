"""The archive adapter at its edges (mutants that survived `make mutants`).

The archive on moto's DynamoDB and S3, written the way the publisher writes it (``allocate``
then ``record``). The test stage has 10 positions a bucket and a hole grace of 0 s.
"""

import time

import pytest

from emulator import aws_time
from functions import archive, aws, names, settings
from functions.archive import ArchivedEvent, Head
from functions.dynamo import from_item
from functions.events import PostCreated, PostData
from tests.helpers import PREFIX, archive_events

pytestmark = pytest.mark.usefixtures("deployed")


def archived(count: int, holes: tuple[int, ...] = ()) -> list[ArchivedEvent]:
    """Record a post at each of ``count`` new positions, except the ``holes`` (counted from 1:
    on the fresh stack, the positions themselves)."""
    posts = [PostCreated.of(PostData(id=f"p{n}", title=f"post {n}")) for n in range(1, count + 1)]
    return archive_events(
        settings.load(), [None if n in holes else posts[n - 1] for n in range(1, count + 1)]
    )


def test_an_empty_archive_has_the_default_head_and_reads_nothing() -> None:
    config = settings.load()
    assert archive.head(config) == Head()
    assert archive.read(config, []) == {}
    assert list(archive.history(config, 0)) == []
    census = archive.census(config)
    assert (census.records, census.distinct_events, census.rearchived) == (0, 0, 0)
    assert census.ratio == 1.0


def test_allocation_reserves_consecutive_positions_and_counts_rearchived_ones() -> None:
    config = settings.load()
    before = time.time()
    assert archive.allocate(config, 3) == range(1, 4)
    assert archive.head(config).rearchived == 0
    assert archive.allocate(config, 2, rearchived=2) == range(4, 6)
    after = time.time()
    head = archive.head(config)
    assert (head.position, head.rearchived, head.segmented_through) == (5, 2, 0)
    assert before <= head.allocated_at <= after


def _ttl_of(position: int) -> float | None:
    """The ``expires_at`` of a table record (None: it carries no TTL), or -1 if it is gone."""
    item = aws.client("dynamodb").get_item(
        TableName=names.resource(PREFIX, names.ARCHIVE_TABLE),
        Key={"bucket": {"N": str(position // 10)}, "position": {"N": str(position)}},
        ConsistentRead=True,
    )
    if "Item" not in item:
        return -1
    value = from_item(item["Item"]).get(names.ARCHIVE_TTL_ATTRIBUTE)
    return None if value is None else float(value)


def test_a_record_carries_no_ttl_until_its_bucket_is_in_s3() -> None:
    # GIVEN a record in a bucket that is not complete (nor old enough to seal partially)
    config = settings.load()
    [event] = archived(1)
    # THEN it carries no TTL, so DynamoDB can never delete it, however long it waits
    assert _ttl_of(event.position) is None
    assert archive.write_segments(config) == []
    assert _ttl_of(event.position) is None
    assert aws_time.expire_items() == 0


def test_a_sealed_record_expires_the_retention_after_its_seal() -> None:
    # GIVEN a complete bucket
    config = settings.load()
    archived(9)
    # WHEN it is sealed into S3
    before = time.time()
    assert archive.write_segments(config) == [0]
    after = time.time()
    # THEN every record in it expires the retention after the seal
    retention = config.archive_retention_days * 86_400
    for position in range(1, 10):
        expires = _ttl_of(position)
        assert expires is not None
        assert int(before + retention) <= expires <= int(after + retention)


def test_a_quiet_bucket_is_sealed_partially_once_its_oldest_record_is_old_enough(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN three records in bucket 0 (of 10 positions), younger than a day
    archived(3)
    assert archive.write_segments(settings.load()) == []
    assert archive.head(settings.load()).sealed_through == 0
    # WHEN the seal age has passed (0 s here)
    monkeypatch.setenv("ARCHIVE_SEAL_AGE_SECONDS", "0")
    config = settings.load()
    assert archive.write_segments(config) == [0]
    # THEN a partial segment holds them, the counter row names it, and they carry their TTL
    head = archive.head(config)
    assert (head.sealed_through, head.segmented_through) == (3, 0)
    keys = [
        o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=config.archive_bucket)["Contents"]
    ]
    assert keys == [f"{names.ARCHIVE_SEGMENT_PREFIX}000000000000.through-000000000003.jsonl"]
    assert all(_ttl_of(p) is not None for p in (1, 2, 3))
    # AND once DynamoDB deletes them, reads still find them, in S3
    assert aws_time.expire_items() == 3
    assert [e.position for e in archive.history(config, 3)] == [1, 2, 3]
    assert sorted(archive.read(config, [2, 3])) == [2, 3]
    # WHEN more records arrive, THEN the partial segment is written again with all of them
    archived(2)
    assert [e.position for e in archive.history(config, 5)] == [1, 2, 3, 4, 5]
    assert _ttl_of(4) is None
    assert archive.write_segments(config) == [0]
    assert archive.head(config).sealed_through == 5
    assert [e.position for e in archive.read_segment(config, 0, 5)] == [1, 2, 3, 4, 5]
    assert aws_time.expire_items() == 2
    # AND when the bucket completes, its complete segment holds the records of the partial one
    archived(5)
    assert archive.write_segments(config) == [0, 1]
    assert [e.position for e in archive.read_segment(config, 0)] == list(range(1, 10))
    assert aws_time.expire_items() == 5
    assert [e.position for e in archive.history(config, 10)] == list(range(1, 11))


def test_nothing_is_sealed_that_a_publisher_could_still_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN recent allocations, one of them not recorded yet (a publisher still running)
    archived(3, holes=(2,))
    monkeypatch.setenv("ARCHIVE_SEAL_AGE_SECONDS", "0")
    monkeypatch.setenv("ARCHIVE_HOLE_GRACE_SECONDS", "3600")
    # THEN nothing is sealed, and nothing gets a TTL, until the hole grace has passed
    assert archive.write_segments(settings.load()) == []
    assert (_ttl_of(1), _ttl_of(3)) == (None, None)


def test_a_run_that_lost_the_counter_row_to_another_gives_no_ttl(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a run that read the counter row before another run sealed positions 1 to 3
    monkeypatch.setenv("ARCHIVE_SEAL_AGE_SECONDS", "0")
    config = settings.load()
    archived(3)
    stale = archive.head(config)
    assert archive.write_segments(config) == [0]
    archived(1)
    monkeypatch.setattr(archive, "head", lambda _: stale)
    # WHEN the stale run seals what it saw
    assert archive.write_segments(config) == []
    # THEN its segment is not named, and the record only it read carries no TTL
    monkeypatch.undo()
    assert archive.head(config).sealed_through == 3
    assert _ttl_of(4) is None


def test_read_takes_only_the_positions_asked_from_each_bucket() -> None:
    # GIVEN three buckets of history
    config = settings.load()
    events = {e.position: e for e in archived(25)}
    # WHEN positions from two buckets, out of order, are read
    found = archive.read(config, [22, 3, 18, 7, 12])
    # THEN exactly those come back
    assert found == {p: events[p] for p in (3, 7, 12, 18, 22)}


def test_history_reports_its_progress_after_each_bucket_and_stops_at_its_end() -> None:
    config = settings.load()
    archived(25)
    done: list[int] = []
    positions = [e.position for e in archive.history(config, 23, done.append)]
    assert positions == list(range(1, 24))
    assert done == [9, 19, 23]


def test_a_bucket_is_segmented_as_soon_as_it_is_complete_and_not_before() -> None:
    # GIVEN positions 1 to 8: bucket 0 (positions 0 to 9) is not complete
    config = settings.load()
    archived(8)
    assert archive.write_segments(config) == []
    # WHEN position 9, the bucket's last, is allocated
    archived(1)
    # THEN bucket 0 is written to its S3 segment, under its documented key, and only it
    assert archive.write_segments(config) == [0]
    assert archive.head(config).segmented_through == 1
    listed = aws.client("s3").list_objects_v2(Bucket=config.archive_bucket)["Contents"]
    assert [o["Key"] for o in listed] == [f"{names.ARCHIVE_SEGMENT_PREFIX}000000000000.jsonl"]
    assert [e.position for e in archive.read_segment(config, 0)] == list(range(1, 10))
    # AND a second run has nothing more to write
    assert archive.write_segments(config) == []


def test_a_bucket_is_not_segmented_while_its_last_allocation_is_younger_than_the_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    archived(12)
    monkeypatch.setenv("ARCHIVE_HOLE_GRACE_SECONDS", "3600")
    assert archive.write_segments(settings.load()) == []
    assert archive.head(settings.load()).segmented_through == 0


def test_allocated_before_compares_with_the_next_archived_event_strictly() -> None:
    # GIVEN positions 1 to 4 with a hole at 2, and a hole at the head (4)
    config = settings.load()
    events = {e.position: e for e in archived(4, holes=(2, 4))}
    head = archive.head(config)
    # THEN the hole at 2 was allocated before the event at 3 was archived, not at that moment
    assert archive.allocated_before(config, 2, events[3].archived_at + 1, head)
    assert not archive.allocated_before(config, 2, events[3].archived_at, head)
    # AND the hole at the head is bounded by the counter's last allocation
    assert archive.allocated_before(config, 4, head.allocated_at + 1, head)
    assert not archive.allocated_before(config, 4, head.allocated_at, head)
    # AND a position not allocated yet was not allocated before anything
    assert not archive.allocated_before(config, 5, time.time() + 3600, head)


def test_a_position_in_a_segmented_bucket_was_allocated_before_anything() -> None:
    # GIVEN bucket 0 in S3, and positions 10 to 14 in the table
    config = settings.load()
    archived(14)
    assert archive.write_segments(config) == [0]
    head = archive.head(config)
    # THEN a position of bucket 0 counts as allocated long ago; one of bucket 1 does not
    assert archive.allocated_before(config, 9, 0.0, head)
    assert not archive.allocated_before(config, 10, 0.0, head)


def test_a_hole_finds_its_next_event_in_a_later_bucket() -> None:
    # GIVEN holes at the end of bucket 0, and the next event in bucket 1
    config = settings.load()
    events = {e.position: e for e in archived(11, holes=(8, 9, 10))}
    head = archive.head(config)
    # THEN the hole at 8 is sealed by the event at 11
    assert archive.allocated_before(config, 8, events[11].archived_at + 1, head)
    assert not archive.allocated_before(config, 8, events[11].archived_at, head)


def test_the_census_counts_records_distinct_events_and_rearchived_ones() -> None:
    # GIVEN three events, one of them archived a second time at a new position
    config = settings.load()
    [first, *_] = archived(3)
    [again] = archive.allocate(config, 1, rearchived=1)
    archive.record(config, [first.model_copy(update={"position": again})])
    # THEN the census sees four records for three events, one of them rearchived
    census = archive.census(config)
    assert (census.records, census.distinct_events, census.rearchived) == (4, 3, 1)
    assert census.ratio == 4 / 3
