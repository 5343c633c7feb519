"""The banned-word rule: whole words, any letter case."""

import pytest

from functions.moderation.rule import moderate


@pytest.mark.parametrize(
    ("content", "verdict"),
    [
        ("I like orange", "rejected"),
        ("ORANGE!", "rejected"),
        ("an Orange, peeled", "rejected"),
        ("oranges are plural", "approved"),
        ("blood-orange juice", "rejected"),
        ("orangutan", "approved"),
        ("apple", "approved"),
    ],
)
def test_default_word(content: str, verdict: str) -> None:
    assert moderate(content, ["orange"]) == verdict


def test_configured_words_replace_the_default() -> None:
    assert moderate("orange", ["kiwi", "lime"]) == "approved"
    assert moderate("a LIME", ["kiwi", "lime"]) == "rejected"


def test_words_are_literal_not_patterns() -> None:
    assert moderate("a.b", ["a.b"]) == "rejected"
    assert moderate("axb", ["a.b"]) == "approved"


def test_no_banned_words_approves_everything() -> None:
    assert moderate("orange", []) == "approved"
