"""The ``blog`` command's input checks: a bad argument is exit code 2, and nothing changes.

The arguments are validated before anything is contacted, so these run with no stack at all;
the commands against a running stack are tested in tests/e2e/test_local_stack.py.
"""

import io

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


def help_of(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        cli.run([*arguments, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


def test_outage_start_help_names_the_three_consumers_and_the_three_modes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    shown = help_of(["outage", "start"], capsys)
    assert "{moderation,comments,query}" in shown
    assert "--mode {pause,unsubscribe,purge}" in shown
    assert "examples:" in shown
    assert "blog outage start moderation --mode pause" in shown


LEAVES = [
    ["status"],
    ["outage", "start"],
    ["outage", "end"],
    ["catch-up"],
    ["rebuild"],
    ["replay"],
    ["dlq", "redrive"],
    ["parked"],
]


@pytest.mark.parametrize("command", LEAVES, ids=" ".join)
def test_every_command_has_examples_and_json(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    shown = help_of(command, capsys)
    assert "--json" in shown
    assert f"blog {' '.join(command)}" in shown.split("examples:", 1)[1]


@pytest.mark.parametrize(
    "arguments",
    [
        ["status", "--json"],
        ["outage", "start", "query", "--mode", "pause", "--json"],
        ["outage", "end", "query", "--json"],
        ["catch-up", "query", "--json"],
        ["rebuild", "query", "--json"],
        ["replay", "query", "--from-position", "1", "--json"],
        ["dlq", "redrive", "query", "--json"],
        ["parked", "--json"],
    ],
    ids=lambda arguments: " ".join(arguments[:2]),
)
def test_json_is_parsed_for_every_command(arguments: list[str]) -> None:
    assert cli.parse(arguments).json_output is True
    assert cli.parse([a for a in arguments if a != "--json"]).json_output is False


def test_the_top_level_help_lists_every_command_and_the_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    shown = help_of([], capsys)
    for command in ("status", "outage", "catch-up", "rebuild", "replay", "dlq", "parked"):
        assert command in shown
    assert "2 a bad argument (nothing changed)" in shown


class _Stream(io.StringIO):
    def __init__(self, terminal: bool) -> None:
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


def test_progress_is_drawn_only_on_a_terminal() -> None:
    # GIVEN a terminal and a pipe
    terminal, pipe = _Stream(terminal=True), _Stream(terminal=False)
    # WHEN a progress bar is asked for on each
    drawn = cli._progress_bar("rebuilding query", terminal)
    # THEN only the terminal gets one, and it ends its line when done
    assert cli._progress_bar("rebuilding query", pipe) is None
    assert drawn is not None
    drawn(5, 10)
    drawn(10, 10)
    drawn(10, 10)
    shown = terminal.getvalue()
    assert shown.count("\r") == 2
    assert " 50% (5/10 positions)" in shown
    assert shown.endswith("100% (10/10 positions)\n")


def test_parked_names_one_consumer_or_lists_them_all() -> None:
    assert cli.parse(["parked"]) == cli.Parked(consumer=None)
    assert cli.parse(["parked", "query", "--json"]) == cli.Parked(
        consumer="query", json_output=True
    )
