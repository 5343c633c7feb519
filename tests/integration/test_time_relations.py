"""The packaged template keeps the relations between times that the design depends on.

Each relation is stated in docs/time.md; this reads every number from the template that
``make package`` builds, so raising one timeout without its grace fails here.
"""

import re
from typing import Any

from emulator.template import FUNCTIONS, ROOT, load
from tests.integration.conftest import functions_of

# AWS's documented limits and guidance (Lambda developer guide: "Configure Lambda function
# timeout", "Configuring an Amazon SQS queue to use with Lambda", "Lambda parameters for
# Amazon DynamoDB event source mappings").
LAMBDA_MAX_TIMEOUT = 900
VISIBILITY_PER_TIMEOUT = 6
MIN_MAX_RECEIVE_COUNT = 5
RECORD_AGE_RANGE = (60, 604_800)


def resolve(template: dict[str, Any], value: Any) -> Any:
    """A literal, or a parameter's default (``Ref``)."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return template["Parameters"][value["Ref"]]["Default"]
    return value


def allocating_handlers() -> set[str]:
    """The modules that allocate archive positions or claim outbox records, found in the code."""
    modules = set()
    for path in (ROOT / "functions").rglob("*.py"):
        if re.search(r"archive\.allocate\(|outbox\.claim\(", path.read_text()):
            modules.add(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return modules


def allocators(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    modules = allocating_handlers()
    return {
        name: props
        for name, props in functions_of(template).items()
        if props["Handler"].rpartition(".")[0] in modules
    }


def grace(props: dict[str, Any], variable: str) -> float:
    return float(props["Environment"]["Variables"][variable])


def test_every_function_sets_its_timeout_and_memory_in_the_merge_template(
    template: dict[str, Any],
) -> None:
    merged = load(FUNCTIONS)["Resources"]
    for name, props in functions_of(template).items():
        ours = merged[name]["Properties"]
        assert (props["Timeout"], props["MemorySize"]) == (ours["Timeout"], ours["MemorySize"])
        assert 1 <= props["Timeout"] <= LAMBDA_MAX_TIMEOUT, name
        assert props["MemorySize"] >= 128, name


def test_the_claims_and_allocations_are_made_only_by_the_publishers(
    template: dict[str, Any],
) -> None:
    assert allocating_handlers() == {"functions.publisher"}
    assert set(allocators(template)) == {"OutboxPublisher", "OutboxSweeper"}


def test_the_sweep_grace_is_longer_than_any_function_that_claims_can_run(
    template: dict[str, Any],
) -> None:
    longest = max(props["Timeout"] for props in allocators(template).values())
    for name, props in allocators(template).items():
        assert grace(props, "OUTBOX_SWEEP_GRACE_SECONDS") > longest, name


def test_the_hole_grace_is_longer_than_any_function_that_allocates_can_run(
    template: dict[str, Any],
) -> None:
    longest = max(props["Timeout"] for props in allocators(template).values())
    for name, props in functions_of(template).items():
        assert grace(props, "ARCHIVE_HOLE_GRACE_SECONDS") > longest, name


def test_sealed_records_outlive_any_segmenter_run(template: dict[str, Any]) -> None:
    segmenter = functions_of(template)["ArchiveSegmenter"]
    retention = float(segmenter["Environment"]["Variables"]["ARCHIVE_RETENTION_DAYS"]) * 86_400
    assert retention > 100 * segmenter["Timeout"]


def test_each_queue_hides_a_message_six_times_its_consumers_timeout(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    checked = 0
    for name, props in functions_of(template).items():
        for event in props.get("Events", {}).values():
            if event["Type"] != "SQS":
                continue
            queue = resources[event["Properties"]["Queue"]["Fn::GetAtt"][0]]["Properties"]
            visibility = int(resolve(template, queue["VisibilityTimeout"]))
            assert visibility >= VISIBILITY_PER_TIMEOUT * props["Timeout"], name
            redrive = queue["RedrivePolicy"]
            assert int(resolve(template, redrive["maxReceiveCount"])) >= MIN_MAX_RECEIVE_COUNT
            dead = resources[redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]]["Properties"]
            # SQS keeps the first enqueue time in the DLQ: it must keep messages at least as long
            assert dead["MessageRetentionPeriod"] >= queue["MessageRetentionPeriod"], name
            checked += 1
    assert checked == 3


def test_the_stream_mapping_gives_up_on_a_record_before_the_stream_drops_it(
    template: dict[str, Any],
) -> None:
    [stream] = [
        event["Properties"]
        for props in functions_of(template).values()
        for event in props.get("Events", {}).values()
        if event["Type"] == "DynamoDB"
    ]
    low, high = RECORD_AGE_RANGE
    assert low <= stream["MaximumRecordAgeInSeconds"] <= high
    assert stream["MaximumRecordAgeInSeconds"] < 24 * 3600  # the stream's retention
    assert stream["MaximumRetryAttempts"] >= 0
    assert stream["BisectBatchOnFunctionError"] is True
    assert "OnFailure" in stream["DestinationConfig"]
