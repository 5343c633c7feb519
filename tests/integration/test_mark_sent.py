"""The publisher's ``sent`` flips: batched in transactions, and never left undone.

A published record left unsent would be rescued by the sweeper and archived again, so the flip
must get through a record already sent (skipped, the rest flipped) and contention (a write of
its own per record after the transaction attempts run out).
"""

from emulator.stack import Stack
from functions import names, outbox, settings
from tests.faults import failing, transaction_conflict
from tests.helpers import scan, stored_posts


def _sent() -> dict[str, bool]:
    return {r["event_id"]: r["sent"] for r in scan(names.OUTBOX_TABLE)}


def _table() -> str:
    return settings.load().table(names.OUTBOX_TABLE)


def test_a_record_already_sent_is_skipped_and_the_rest_flipped(deployed: Stack) -> None:
    # GIVEN three unsent records, one of them flipped meanwhile (by the sweeper, say)
    ids = stored_posts(3)
    outbox.mark_sent(_table(), [ids[1]])
    # WHEN the publisher flips all three in one call
    outbox.mark_sent(_table(), ids)
    # THEN all are sent, and none is left in the unsent index
    assert _sent() == dict.fromkeys(ids, True)
    assert all("unsent" not in r for r in scan(names.OUTBOX_TABLE))


def test_more_than_one_transaction_of_records_are_all_flipped(deployed: Stack) -> None:
    ids = stored_posts(outbox.MAX_TRANSACTION + 5)
    with failing("dynamodb", "UpdateItem", RuntimeError("no single writes")) as single:
        outbox.mark_sent(_table(), ids)
    assert _sent() == dict.fromkeys(ids, True)
    assert single == []  # two transactions did it all


def test_records_contended_in_every_attempt_are_flipped_one_by_one(deployed: Stack) -> None:
    # GIVEN records whose flip transaction conflicts with other transactions at every attempt
    ids = stored_posts(2)
    with failing("dynamodb", "TransactWriteItems", transaction_conflict(len(ids))) as cancelled:
        # WHEN the publisher flips them
        outbox.mark_sent(_table(), ids)
    # THEN each attempt was cancelled, and a write of their own flipped them all the same
    assert len(cancelled) == outbox.ATTEMPTS
    assert _sent() == dict.fromkeys(ids, True)


def test_a_contended_record_sent_meanwhile_is_skipped_by_its_own_write(deployed: Stack) -> None:
    # GIVEN two records whose flip transaction always conflicts, one of them sent meanwhile
    ids = stored_posts(2)
    outbox.mark_sent(_table(), ids[:1])
    with failing("dynamodb", "TransactWriteItems", transaction_conflict(len(ids))):
        # WHEN the publisher flips both, falling back to a write each
        outbox.mark_sent(_table(), ids)
    # THEN the sent one's refused write is no error, and the other is flipped
    assert _sent() == dict.fromkeys(ids, True)
