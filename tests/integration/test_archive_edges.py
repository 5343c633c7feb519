"""The archive adapter at its edges (issue 15, mutants that survived `make mutants`).

The archive on moto's DynamoDB and S3, written the way the publisher writes it (``allocate``
then ``record``). The test stage has 10 positions a bucket and a hole grace of 0 s.
"""

import time

import pytest

from functions import archive, aws, names, settings
from functions.archive import ArchivedEvent, Head
from functions.dynamo import from_item
from functions.events import PostCreated, PostData
from tests.helpers import PREFIX

pytestmark = pytest.mark.usefixtures("deployed")


def archived(count: int, holes: tuple[int, ...] = ()) -> list[ArchivedEvent]:
    """Allocate ``count`` positions and record a post at each, except at ``holes``."""
    config = settings.load()
    events = []
    for position in archive.allocate(config, count):
        post = PostCreated.of(PostData(id=f"p{position}", title=f"post {position}"))
        events.append(
            ArchivedEvent(
                position=position,
                event_id=post.event_id,
                event_type=post.type,
                payload=post.to_json(),
                archived_at=time.time(),
            )
        )
    recorded = [e for e in events if e.position not in holes]
    archive.record(config, recorded)
    return recorded


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


def test_a_record_expires_from_the_table_after_the_retention() -> None:
    config = settings.load()
    before = time.time()
    [event] = archived(1)
    after = time.time()
    item = aws.client("dynamodb").get_item(
        TableName=names.resource(PREFIX, names.ARCHIVE_TABLE),
        Key={"bucket": {"N": "0"}, "position": {"N": str(event.position)}},
    )["Item"]
    retention = config.archive_retention_days * 86_400
    expires = from_item(item)[names.ARCHIVE_TTL_ATTRIBUTE]
    assert int(before + retention) <= expires <= int(after + retention)


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
