"""AWS's billing rules as the cost benchmark applies them (benchmarks/billing.py), and how the
benchmark turns measured batches into the design load's: pure, no AWS."""

from typing import Any

import pytest

from benchmarks import billing, cost

KEYS_ONLY = billing.Index("unsent", ("shard",), "KEYS_ONLY")
TABLE = billing.Table("outbox", ("pk",), (KEYS_ONLY,))


def item(size_of_text: int, **extra: dict[str, str]) -> dict[str, dict[str, str]]:
    return {"pk": {"S": "p"}, "text": {"S": "x" * size_of_text}, **extra}


class TestItemSize:
    @pytest.mark.parametrize(
        ("number", "size"),
        [
            ("7", 2),
            ("12", 2),
            ("123", 3),
            ("1000", 2),
            ("0.001", 2),
            ("-12.5", 4),
            ("0", 2),
            ("9" * 38, 20),
        ],
    )
    def test_a_number_is_a_byte_per_two_significant_digits_plus_one(
        self, number: str, size: int
    ) -> None:
        assert billing.number_size(number) == size

    def test_names_and_values_add_up_by_type(self) -> None:
        # GIVEN a string (3 + 5 bytes, UTF-8), a number, a list and a map
        document: dict[str, Any] = {
            "abc": {"S": "héllo"},  # 3 + 6
            "n": {"N": "42"},  # 1 + 2
            "l": {"L": [{"S": "x"}, {"BOOL": True}]},  # 1 + 3 + (1 + 1) + (1 + 1)
            "m": {"M": {"k": {"NULL": True}}},  # 1 + 3 + (1 + 1 + 1)
            "b": {"B": b"\x00\x01"},  # 1 + 2
            "ss": {"SS": ["a", "bc"]},  # 2 + 3
        }
        # THEN its size is AWS's sum
        assert billing.item_size(document) == 9 + 3 + 8 + 7 + 3 + 5

    def test_no_item_has_no_size(self) -> None:
        assert billing.item_size(None) == 0


class TestUnits:
    @pytest.mark.parametrize(("size", "units"), [(0, 1), (1, 1), (1024, 1), (1025, 2), (3000, 3)])
    def test_a_write_unit_per_started_kilobyte(self, size: int, units: int) -> None:
        assert billing.write_units(size) == units

    def test_a_read_unit_per_started_four_kilobytes_half_if_eventually_consistent(self) -> None:
        assert billing.read_units(4096, consistent=True) == 1
        assert billing.read_units(4097, consistent=True) == 2
        assert billing.read_units(4097, consistent=False) == 1

    def test_a_query_rounds_its_items_together_a_batch_each_item(self) -> None:
        sizes = [1000, 1000, 1000]
        assert billing.read_call_units(sizes, consistent=True) == 1
        assert billing.read_call_units(sizes, consistent=True, single=False) == 3

    def test_an_update_costs_the_larger_of_before_and_after(self) -> None:
        change = billing.ItemChange(TABLE, item(3000), item(10))
        assert billing.change_units(change) == (3, 0)

    def test_a_transaction_costs_twice(self) -> None:
        change = billing.ItemChange(TABLE, None, item(10), transactional=True)
        assert billing.change_units(change) == (2, 0)

    def test_a_failed_condition_still_costs_the_item(self) -> None:
        unchanged = item(1500)
        assert billing.change_units(billing.ItemChange(TABLE, unchanged, unchanged)) == (2, 0)


class TestIndexWrites:
    def test_an_item_entering_the_index_is_one_write(self) -> None:
        after = item(10, shard={"S": "unsent#03"})
        assert billing.index_write_units(TABLE, None, after) == 1

    def test_an_item_leaving_the_index_is_one_write(self) -> None:
        before = item(10, shard={"S": "unsent#03"})
        assert billing.index_write_units(TABLE, before, item(10)) == 1

    def test_a_new_index_key_is_a_delete_and_a_put(self) -> None:
        before = item(10, shard={"S": "unsent#03"})
        after = item(10, shard={"S": "unsent#04"})
        assert billing.index_write_units(TABLE, before, after) == 2

    def test_an_unprojected_change_costs_a_keys_only_index_nothing(self) -> None:
        before = item(10, shard={"S": "unsent#03"})
        after = item(900, shard={"S": "unsent#03"})
        assert billing.index_write_units(TABLE, before, after) == 0

    def test_a_projected_change_rewrites_the_entry_at_its_size(self) -> None:
        everything = billing.Table("view", ("pk",), (billing.Index("listing", ("shard",), "ALL"),))
        before = item(10, shard={"S": "b"})
        after = item(1500, shard={"S": "b"})
        assert billing.index_write_units(everything, before, after) == 2

    def test_an_item_outside_the_index_costs_it_nothing(self) -> None:
        assert billing.index_write_units(TABLE, item(10), item(20)) == 0


class TestOtherServices:
    def test_sns_and_sqs_bill_a_request_per_started_64_kb(self) -> None:
        assert billing.chunked_requests(0) == 1
        assert billing.chunked_requests(65_536) == 1
        assert billing.chunked_requests(256 * 1024) == 4

    def test_lambda_stretches_cpu_by_its_vcpu_share_and_rounds_up_to_the_ms(self) -> None:
        # GIVEN 10 ms of CPU at 1,769 MB (one vCPU) and at a quarter of it
        assert billing.lambda_billed_ms(0.010, 0.0, 1769) == 10
        assert billing.lambda_billed_ms(0.010, 5.2, 1769) == 16
        assert billing.lambda_billed_ms(0.010, 0.0, 1769 // 4) == 41

    def test_gb_seconds_at_the_configured_memory(self) -> None:
        assert billing.gb_seconds(512, 100) == pytest.approx(0.05)


class TestDesignLoad:
    def test_a_batch_cost_is_fitted_through_the_two_measured_points(self) -> None:
        # GIVEN an actor paying 1 write a record and 9 a batch: 10 at batch 1, 1.9 at batch 10
        one = {"function:outbox_publisher": cost.Usage(write_units=10)}
        ten = {"function:outbox_publisher": cost.Usage(write_units=1.9)}
        # WHEN it runs at batches of 3
        usage = cost.at_batch(one, ten, {"outbox_publisher": 3})
        # THEN it pays 1 + 9 / 3 a record
        assert usage["function:outbox_publisher"].write_units == pytest.approx(4.0)

    def test_the_publisher_batch_is_a_quarter_second_of_a_shards_events(self) -> None:
        assert cost.DESIGN.events_per_second == 26
        assert cost.design_batches(shards=1)["outbox_publisher"] == 6.5
        assert cost.design_batches(shards=4)["outbox_publisher"] == 26 / 16

    def test_the_floor_writes_each_event_once_and_batches_what_can_be_batched(self) -> None:
        floor = cost.floor(
            {"PostCreated": 1, "CommentCreated": 4},
            {"PostCreated": 400, "CommentCreated": 1500},
            {"query_consumer": 5, "moderation_consumer": 4},
        )
        assert floor.write_units == 1 + 4 * 2 + 5
        assert floor.sns_requests == pytest.approx(5 / 10)
        assert floor.sqs_requests == pytest.approx(1.8)
        assert floor.sqs_deliveries == 9
        assert (floor.invocations, floor.api_requests) == (0, 0)

    def test_seen_marks_are_repriced_at_the_size_their_item_reaches(self) -> None:
        # GIVEN one mark an action measured at 1 unit, on a key of 1,000 bytes
        measured = cost.Usage(seen_marks=1, seen_mark_units=1, seen_mark_key_bytes=1000)
        # WHEN a message a second comes, one a batch: 60 ADDs of a 6-byte mark a minute
        extra = cost.steady_seen_marks(measured, rate=1, batch=1)
        # THEN the first 4 ADDs fit 1 KB, the other 56 take 2 units
        assert extra == pytest.approx((4 * 1 + 56 * 2) / 60 - 1)

    def test_a_small_item_of_marks_costs_nothing_more(self) -> None:
        measured = cost.Usage(seen_marks=2, seen_mark_units=2, seen_mark_key_bytes=2 * 50)
        assert cost.steady_seen_marks(measured, rate=1, batch=1) == 0


def test_every_price_names_its_source_and_date_and_is_shown_as_aws_quotes_it() -> None:
    from benchmarks.prices import PRICES

    assert all(price.source and price.dated for price in PRICES.values())
    assert PRICES["api_gateway_request"].quoted() == "$3.50 per million"
    assert PRICES["s3_put"].quoted() == "$0.005 per 1,000"
    assert PRICES["lambda_gb_second"].quoted() == "$0.0000166667"
