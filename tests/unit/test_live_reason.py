"""The reason a poison message is logged with (mutants that survived `make mutants`)."""

import pytest
from pydantic import ValidationError

from functions.events import parse_event
from functions.validation import reason as _reason


def reason_for(body: str) -> str:
    with pytest.raises(ValidationError) as raised:
        parse_event(body)
    return _reason(raised.value)


def test_a_body_that_is_not_json_is_named_body_without_a_link() -> None:
    reason = reason_for("not json")
    assert reason.startswith("body: Invalid JSON")
    assert "errors.pydantic.dev" not in reason


def test_each_invalid_field_is_named_by_its_path() -> None:
    reason = reason_for('{"type": "PostCreated", "aggregate_id": "p1", "data": {"id": "p1"}}')
    assert reason == "PostCreated.data.title: Field required"
