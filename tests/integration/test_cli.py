"""The ``blog`` command's input checks: a bad argument is exit code 2, and nothing changes.

The arguments are validated before anything is contacted, so these run with no stack at all;
the commands against a running stack are tested in tests/e2e/test_local_stack.py.
"""

import pytest

from operations import cli


@pytest.mark.parametrize(
    "arguments",
    [
        ["outage", "start", "nobody", "--mode", "pause"],
        ["outage", "end", "nobody"],
        ["catch-up", "nobody"],
        ["replay", "nobody", "--from-position", "1"],
        ["dlq", "redrive", "nobody"],
        ["parked", "nobody"],
        ["rebuild", "moderation"],
        ["outage", "start", "query", "--mode", "sideways"],
        ["replay", "query", "--from-position", "0"],
    ],
)
def test_a_bad_argument_is_exit_code_2_with_a_clear_error(
    arguments: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no stack at all: any attempt to reach one would fail differently
    monkeypatch.setenv("AWS_PORT", "9")
    # WHEN the command is given a bad argument
    code = cli.run(arguments)
    # THEN it is refused with exit code 2, naming the argument
    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith("blog ")
    field = (
        "mode" if "sideways" in arguments else "from_position" if "0" in arguments else "consumer"
    )
    assert f": {field}: " in error


@pytest.mark.parametrize("consumer", ["moderation", "comments", "query"])
def test_every_consumer_is_accepted_by_every_consumer_command(consumer: str) -> None:
    for arguments, model in [
        (["outage", "start", consumer, "--mode", "purge"], cli.OutageStart),
        (["outage", "end", consumer], cli.OutageEnd),
        (["catch-up", consumer], cli.CatchUp),
        (["replay", consumer, "--from-position", "3"], cli.Replay),
        (["dlq", "redrive", consumer], cli.Redrive),
        (["parked", consumer], cli.Parked),
    ]:
        assert cli.parse(arguments).model_dump()["consumer"] == consumer
        assert isinstance(cli.parse(arguments), model)


def test_parked_names_one_consumer_or_lists_them_all() -> None:
    assert cli.parse(["parked"]) == cli.Parked(consumer=None)
    assert cli.parse(["parked", "query", "--json"]) == cli.Parked(
        consumer="query", json_output=True
    )
