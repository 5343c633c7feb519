"""What a log line may say about input that failed validation: where, and what kind of error.

A ``ValidationError``'s text quotes the input (``input_value=...``), which may be a user's post
or comment, and logs must carry ids, positions and error locations, never user text. Pydantic's
messages are fixed templates, except for the kinds listed in ``QUOTING`` (a custom validator's
message can repeat the input), which are named by their kind only. Field names and event types
are named: this code writes them, a user never does.
"""

from pydantic import ValidationError

QUOTING = frozenset({"value_error", "assertion_error"})


def reason(error: ValidationError) -> str:
    """Each problem as ``<path>: <message>`` (the path ``body`` for the whole input)."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'body'}: "
        + (e["type"] if e["type"] in QUOTING else e["msg"])
        for e in error.errors(include_url=False)
    )
