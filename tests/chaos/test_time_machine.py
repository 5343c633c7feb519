"""The chaos machine over weeks: every time step, in one scripted scenario (`make test`).

The random runs (``make chaos``, and the fixed-seed slice) draw these steps among the others;
this scenario makes sure each one runs in every ``make test``, and that after 60-odd days of
clock, outages past every retention and handlers stopped at their timeout, nothing is lost.
"""

from collections.abc import Callable

from tests.chaos.test_pipeline_machine import Pipeline
from tests.chaos.time_steps import DAY, HOUR, MINUTE, TIME_FAULT_KINDS


def test_every_time_step_in_one_scripted_scenario() -> None:
    machine = Pipeline()
    m = machine
    try:
        m.view_shows_only_what_was_written_once()
        first = m._write_post("Before the weeks")
        steps: list[Callable[[], object]] = [
            lambda: m._write_comment(first, "a day"),
            m.drain_all,
            lambda: m.time_passes(MINUTE, schedules_run=True),
            lambda: m._write_comment(first, "an orange a day"),
            lambda: m.drain_some(["outbox_publisher"], rounds=1),
            lambda: m.fire_schedule("archive_segmenter"),
            lambda: m.time_passes(2 * DAY, schedules_run=True),  # sealed partially: a day old
            lambda: m.time_passes(8 * DAY, schedules_run=False),  # their TTL passes
            m.the_live_path_alone_converges,
            lambda: m.handler_runs_past_its_timeout("outbox_publisher", "apple"),
            lambda: m.handler_runs_past_its_timeout("query_consumer", "x"),
            lambda: m.handler_runs_past_its_timeout("moderation_consumer", "orange"),
            lambda: m.handler_runs_past_its_timeout("comments_consumer", "apple"),
            m.the_live_path_alone_converges,
            lambda: m.publisher_away_longer_than_the_stream("a day"),  # 25 h: out of the stream
            m.the_live_path_alone_converges,  # the sweeper publishes them from the outbox
            lambda: m.consumer_paused_for_days("moderation", 6),
            lambda: m.consumer_paused_for_days("query", 15),  # past the queue's retention
            m.sns_down_for_two_days,
            m.the_live_path_alone_converges,
            lambda: m._write_comment(first, "written during the pause"),
            lambda: m.drain_some(["outbox_publisher"], rounds=2),
            lambda: m.time_passes(15 * DAY, schedules_run=False),  # gone from the queues
            lambda: m.time_passes(HOUR, schedules_run=True),  # the catch-ups run again
            m.the_live_path_alone_converges,
            lambda: m.time_passes(30 * DAY, schedules_run=True),
            m.check_before_repair,
            lambda: m.rebuild_mid_stream("after sixty days", "an orange a day", polls=2),
            m.the_live_path_alone_converges,
        ]
        for step in steps:
            step()
            m.view_shows_only_what_was_written_once()
        injected = set(m.faults)
    finally:
        machine.teardown()
    assert injected >= set(TIME_FAULT_KINDS), set(TIME_FAULT_KINDS) - injected
