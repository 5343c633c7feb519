"""The outbox adapter at its edges (found by `make mutants`): more than one transaction of
records, contention in one of them only, a position offered for a record already sent, and the
backlog's count and age. Each against the real table on moto."""

from datetime import UTC, datetime, timedelta

from emulator.stack import Stack
from functions import names, outbox, settings
from tests.faults import failing, transaction_conflict
from tests.helpers import backdate_outbox, scan, stored_posts

FAR_FUTURE = datetime.now(UTC) + timedelta(days=1)


def _table() -> str:
    return settings.load().table(names.OUTBOX_TABLE)


def _by_id() -> dict[str, dict[str, object]]:
    return {r["event_id"]: r for r in scan(names.OUTBOX_TABLE)}


def test_a_claim_of_more_than_one_transaction_of_records_wins_them_all(deployed: Stack) -> None:
    # GIVEN more unclaimed records than one transaction holds
    ids = stored_posts(outbox.MAX_TRANSACTION + 5)
    records = outbox.unsent(_table(), FAR_FUTURE)
    # WHEN a publisher claims them all
    won = outbox.claim(_table(), records, now=1.0)
    # THEN it won every one, in both transactions
    assert won == set(ids)
    assert {r["claimed_at"] for r in _by_id().values()} == {1}


def test_contention_in_the_first_transaction_only_still_flips_its_records(
    deployed: Stack,
) -> None:
    # GIVEN two transactions of records to flip, the first conflicting at every attempt
    ids = stored_posts(outbox.MAX_TRANSACTION + 5)
    full = outbox.MAX_TRANSACTION
    with failing(
        "dynamodb",
        "TransactWriteItems",
        transaction_conflict(full),
        when=lambda params: len(params["TransactItems"]) == full,
    ) as cancelled:
        # WHEN the publisher flips them
        outbox.mark_sent(_table(), ids)
    # THEN the first transaction's records were flipped one by one, the second's together
    assert len(cancelled) == outbox.ATTEMPTS
    assert {i: r["sent"] for i, r in _by_id().items()} == dict.fromkeys(ids, True)


def test_a_position_offered_for_a_record_already_sent_is_refused_quietly(
    deployed: Stack,
) -> None:
    # GIVEN a record another publisher has sent meanwhile
    [event_id] = stored_posts(1)
    outbox.mark_sent(_table(), [event_id])
    # WHEN a publisher whose publish failed offers to keep its position
    outbox.remember_position(_table(), event_id, 7)
    # THEN nothing is raised, and the sent record keeps no position
    assert "position" not in _by_id()[event_id]


def test_the_backlog_is_counted_and_dated_by_its_oldest_record(deployed: Stack) -> None:
    # GIVEN three records written a minute ago, one of them sent since
    ids = stored_posts(3)
    started = datetime.now(UTC)
    backdate_outbox(60)
    minute = timedelta(seconds=60)
    before, after = started - minute, datetime.now(UTC) - minute
    outbox.mark_sent(_table(), ids[:1])
    # WHEN the backlog is measured
    count, oldest = outbox.oldest_unsent(_table())
    age = outbox.oldest_unsent_age(_table())
    # THEN it counts the two unsent, and dates the oldest a minute back
    assert count == 2
    assert oldest is not None
    assert before - timedelta(seconds=1) <= oldest <= after + timedelta(seconds=1)
    assert 59 <= age <= 61 + (datetime.now(UTC) - started).total_seconds()
    # AND once all are sent, there is no backlog and no age
    outbox.mark_sent(_table(), ids)
    assert outbox.oldest_unsent(_table()) == (0, None)
    assert outbox.oldest_unsent_age(_table()) == 0.0


def test_the_sweeper_reads_at_most_its_limit_of_unsent_records_oldest_first(
    deployed: Stack,
) -> None:
    ids = stored_posts(3)
    assert [r.event_id for r in outbox.unsent(_table(), FAR_FUTURE, limit=2)] == ids[:2]


def test_a_record_archived_at_a_position_is_not_claimed_again(deployed: Stack) -> None:
    # GIVEN an unsent record that already keeps the position it was archived at
    [event_id] = stored_posts(1)
    [record] = outbox.unsent(_table(), FAR_FUTURE)
    outbox.remember_position(_table(), event_id, 7)
    # WHEN a publisher holding the record as it was before tries to claim it
    won = outbox.claim(_table(), [record], now=1.0)
    # THEN it loses: archiving it again would put the event at two positions
    assert won == set()
    assert "claimed_at" not in _by_id()[event_id]
