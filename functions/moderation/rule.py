"""The moderation decision: a comment with a banned word is rejected. Pure."""

import re
from collections.abc import Iterable

from functions.events import ModerationVerdict


def moderate(content: str, banned_words: Iterable[str]) -> ModerationVerdict:
    """Reject a comment that contains a banned word as a whole word, in any letter case."""
    words = [re.escape(word) for word in banned_words if word]
    if not words:
        return "approved"
    pattern = re.compile(r"\b(?:" + "|".join(words) + r")\b", re.IGNORECASE)
    return "rejected" if pattern.search(content) else "approved"
