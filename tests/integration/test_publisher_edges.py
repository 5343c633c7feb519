"""The sweeper's decisions, one record of each kind in one sweep (found by `make mutants`: the
end-to-end tests see the final state, which the stream publisher repairs, not what the sweeper
did itself). Through the real outbox table, archive, SNS topic and queues on moto."""

import io
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import EndpointConnectionError

from emulator import runner
from emulator.stack import Stack
from functions import archive, names, outbox, publisher, settings
from tests.faults import failing, failing_entries
from tests.helpers import scan, stored_posts

GRACE = 30
FAR_FUTURE = datetime.now(UTC) + timedelta(days=1)
SNS_DOWN = EndpointConnectionError(endpoint_url="https://sns.us-east-1.amazonaws.com")


@pytest.fixture
def config(deployed: Stack, monkeypatch: pytest.MonkeyPatch) -> settings.Settings:
    monkeypatch.setenv("OUTBOX_SWEEP_GRACE_SECONDS", str(GRACE))
    return settings.load()


def _table() -> str:
    return settings.load().table(names.OUTBOX_TABLE)


def _stale() -> list[outbox.OutboxRecord]:
    return outbox.unsent(_table(), FAR_FUTURE)


def _claim(event_ids: list[str], at: float) -> None:
    records = [r for r in _stale() if r.event_id in event_ids]
    assert outbox.claim(_table(), records, at) == set(event_ids)


def _sent() -> dict[str, bool]:
    return {r["event_id"]: r["sent"] for r in scan(names.OUTBOX_TABLE)}


def test_one_sweep_sorts_every_kind_of_unsent_record(
    config: settings.Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN, at a whole second `now` and a sweep grace of 30 s, unsent records of each kind:
    now = float(int(time.time()))
    kept, unclaimed, live_1, live_2, at_grace, dead = stored_posts(6)
    # archived at a position, then SNS failed (kept: republished from that position) ...
    with failing("sns", "PublishBatch", SNS_DOWN):
        publisher.publish_new(config, [r for r in _stale() if r.event_id == kept])
    # ... never claimed (the stream publisher is late) ...
    # ... claimed 10 s ago by two publishers that may still finish ...
    _claim([live_1, live_2], now - 10)
    # ... and claimed exactly the grace ago and long ago, by publishers that died
    _claim([at_grace], now - GRACE)
    _claim([dead], now - 100)
    capsys.readouterr()
    logged = _logged(monkeypatch)
    # WHEN the sweeper sweeps them
    report = publisher.sweep(config, _stale(), now)
    # THEN it republished the kept one, claimed and published the unclaimed one, left the live
    # claims alone, and rescued the two expired ones, archiving them again
    assert report == publisher.PublishReport(
        records=4, published=4, left_to_live_publishers=2, republished=1, rearchived=2
    )
    assert _sent() == {
        kept: True,
        unclaimed: True,
        live_1: False,
        live_2: False,
        at_grace: True,
        dead: True,
    }
    assert archive.census(config) == archive.Census(records=4, distinct_events=4, rearchived=2)
    # AND the rescue is logged and published as a metric, with its count
    [line] = [json.loads(line) for line in logged.getvalue().splitlines()]
    assert line["message"] == (
        "rescued records whose publisher died after claiming them: archived again"
    )
    assert (line["level"], line["rearchived"]) == ("WARNING", 2)
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    [metric] = [m for m in metrics if "_aws" in m]
    assert metric[publisher.REARCHIVED_METRIC] == [2.0]
    [[definition]] = [d["Metrics"] for d in metric["_aws"]["CloudWatchMetrics"]]
    assert definition == {"Name": publisher.REARCHIVED_METRIC, "Unit": "Count"}


def test_a_sweep_while_sns_is_down_keeps_positions_and_the_next_one_reuses_them(
    config: settings.Settings,
) -> None:
    # GIVEN two records the stream publisher never got to
    ids = stored_posts(2)
    # WHEN the sweeper runs while SNS is down
    with failing("sns", "PublishBatch", SNS_DOWN):
        down = publisher.sweep(config, _stale(), time.time())
    # THEN it archived them, published nothing, and each record keeps its position
    assert (down.records, down.published, down.failed) == (2, 0, 2)
    assert {r.event_id: r.position for r in _stale()} == dict(zip(ids, [1, 2], strict=True))
    # WHEN it runs again with SNS back
    up = publisher.sweep(config, _stale(), time.time())
    # THEN it republished them from those positions, archiving nothing again
    assert (up.republished, up.published, up.rearchived) == (2, 2, 0)
    assert archive.head(config).position == 2
    assert _sent() == dict.fromkeys(ids, True)


def test_more_than_one_sns_batch_is_published_and_flipped_in_full(
    config: settings.Settings,
) -> None:
    # GIVEN more new records than one PublishBatch carries
    ids = stored_posts(publisher.SNS_BATCH + 3)
    # WHEN the stream publisher publishes them
    report = publisher.publish_new(config, _stale())
    # THEN every batch's records count as published, and every one is sent
    assert (report.records, report.published, report.failed) == (len(ids), len(ids), 0)
    assert _sent() == dict.fromkeys(ids, True)


def test_claims_lost_to_other_publishers_are_counted_and_cost_no_position(
    config: settings.Settings,
) -> None:
    # GIVEN a sweeper's read of one record never claimed and one whose claimant died
    now = float(int(time.time()))
    unclaimed, dead = stored_posts(2)
    _claim([dead], now - 100)
    as_read = _stale()
    # ... which, before it claims them, the stream publisher and another sweeper claim
    _claim([unclaimed], now - 1)
    assert outbox.claim(_table(), [r for r in as_read if r.event_id == dead], now - 1) == {dead}
    # WHEN the sweeper goes on with what it read
    report = publisher.sweep(config, as_read, now)
    # THEN it lost both claims, counted them, and archived nothing
    assert (report.claimed_elsewhere, report.records, report.rearchived) == (2, 0, 0)
    assert archive.head(config).position == 0


def _logged(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """The publisher's log lines (JSON, one a line), into a buffer."""
    logged = io.StringIO()
    monkeypatch.setattr(publisher.logger.registered_handler, "stream", logged)
    return logged


def test_what_sns_did_not_take_is_logged_with_its_reason(
    config: settings.Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN three archived events to publish
    ids = stored_posts(3)
    logged = _logged(monkeypatch)
    # WHEN SNS refuses one entry of the batch, and then is unreachable
    with failing_entries(lambda entry: entry["Id"] == "1"):
        publisher.publish_new(config, [r for r in _stale() if r.event_id in ids[:2]])
    with failing("sns", "PublishBatch", SNS_DOWN):
        publisher.publish_new(config, [r for r in _stale() if r.event_id == ids[2]])
    # THEN each is a warning that says which event or why
    refused, down = [json.loads(line) for line in logged.getvalue().splitlines()]
    assert (refused["level"], refused["message"]) == ("WARNING", "publish failed")
    assert refused["event_id"] == ids[1]
    assert refused["reason"]["Code"] == "InternalError"
    assert (down["level"], down["message"]) == ("WARNING", "SNS unavailable; records stay unsent")
    assert down["reason"] == repr(SNS_DOWN)


def test_the_stream_arn_names_the_outbox_table_of_its_prefix() -> None:
    # The local runner finds the real stream by the table this stand-in names.
    arn = publisher.stream_arn("blog-x")
    assert runner.table_of_stream(arn) == names.resource("blog-x", names.OUTBOX_TABLE)
