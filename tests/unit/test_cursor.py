"""GET /posts's query string: the limit's bounds, and cursors that are ours or refused."""

import re

import pytest
from pydantic import ValidationError

from functions.query.cursor import DEFAULT_LIMIT, MAX_LIMIT, Cursor, InvalidCursor, PageQuery

POST_ID = "019ad2f0c1a2b3c4d5e6f7a8b9c0"


def test_a_cursor_round_trips_and_is_opaque() -> None:
    text = Cursor.after_post(POST_ID).encode()
    assert POST_ID not in text
    assert re.fullmatch(r"[A-Za-z0-9_-]+", text)
    assert Cursor.decode(text).after == POST_ID


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not base64!",
        "eyJ2IjoxfQ",  # {"v":1}
        Cursor.after_post(POST_ID).encode()[:-3],  # truncated
        Cursor.after_post(POST_ID).encode() + "AA",  # padded with junk
        "x" * 1000,
    ],
)
def test_a_cursor_that_is_not_ours_is_refused(text: str) -> None:
    with pytest.raises(InvalidCursor):
        Cursor.decode(text)


def test_a_cursor_edited_to_point_elsewhere_is_refused() -> None:
    genuine = Cursor.after_post(POST_ID)
    forged = genuine.model_copy(update={"after": "ffffffffffff" + POST_ID[12:]})
    with pytest.raises(InvalidCursor):
        Cursor.decode(forged.encode())


def test_a_cursor_with_an_id_no_post_could_have_is_refused() -> None:
    with pytest.raises(ValidationError):
        Cursor.after_post("../../meta")


@pytest.mark.parametrize("limit", ["1", "50", str(MAX_LIMIT)])
def test_a_limit_from_1_to_200_is_taken(limit: str) -> None:
    assert PageQuery.model_validate({"limit": limit}).limit == int(limit)


def test_the_default_limit_is_50_and_other_parameters_are_ignored() -> None:
    query = PageQuery.model_validate({"utm": "x"})
    assert (query.limit, query.cursor) == (DEFAULT_LIMIT, None) == (50, None)


@pytest.mark.parametrize("limit", ["0", "-1", "201", "abc", "1.5", "", "1e3"])
def test_any_other_limit_is_refused(limit: str) -> None:
    with pytest.raises(ValidationError):
        PageQuery.model_validate({"limit": limit})
