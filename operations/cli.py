"""``blog``: operate the local stack (``make dev``), or a deployed one with ``--stack NAME``.

    blog status
    blog outage start moderation|comments|query --mode pause|unsubscribe|purge
    blog outage end moderation|comments|query
    blog catch-up moderation|comments|query
    blog replay moderation|comments|query --from-position N
    blog rebuild query
    blog dlq redrive moderation|comments|query
    blog parked [moderation|comments|query]

Every command takes ``--json`` (one JSON document on stdout) and ``--help`` (its arguments and
examples). A progress bar is drawn on stderr only when stderr is a terminal. A bad argument is
refused with exit code 2 before anything is contacted, and nothing is changed.

With ``--stack NAME`` (before the command) the same commands operate a deployed stack, on AWS
or on a local engine (``AWS_ENDPOINT_URL``): its resources are found from CloudFormation, the
settings are the stack's functions' own, pausing disables the consumer's event source mapping,
and catch-up, rebuild and replay run here against the stack's tables. A stack that does not
exist, or is not this project's, is refused with exit code 2, and nothing is changed.

Locally, AWS calls go to the emulator on ``AWS_PORT`` (default 5000); pausing and resuming a
consumer goes to the runner's control API on ``AWS_PORT + 1``.
"""

import argparse
import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, NamedTuple, TextIO, get_args

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from emulator.config import stage_environment
from emulator.control import ControlUnavailable, RemoteConsumers, control_url
from emulator.local import STAGE, endpoint
from emulator.moto_env import use_emulator
from functions import aws
from functions.subscriptions import checkpoint
from operations import deployed, ops

Consumer = Literal["moderation", "comments", "query"]
Port = Annotated[int, Field(gt=0, lt=65535)]


StackName = Annotated[str, Field(pattern=r"^[A-Za-z][-A-Za-z0-9]{0,127}$")]


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    aws_port: Port = 5000
    stack: StackName | None = None
    json_output: bool = False


class Status(_Arguments):
    pass


class OutageStart(_Arguments):
    consumer: Consumer
    mode: ops.Mode


class OutageEnd(_Arguments):
    consumer: Consumer


class CatchUp(_Arguments):
    consumer: Consumer


class Rebuild(_Arguments):
    consumer: Literal["query"]


class Replay(_Arguments):
    consumer: Consumer
    from_position: Annotated[int, Field(ge=1)]


class Redrive(_Arguments):
    consumer: Consumer


class Parked(_Arguments):
    consumer: Consumer | None = None


CONSUMERS: tuple[Consumer, ...] = get_args(Consumer)

_EXAMPLES = """examples:
  blog status
  blog outage start moderation --mode pause
  blog outage end moderation
  blog catch-up comments --json
  blog replay query --from-position 1
  blog rebuild query
  blog dlq redrive moderation
  blog parked query
  blog --stack blog-prod status --json

consumers: moderation (decides comments), comments (applies decisions), query (the read view).
Exit codes: 0 done; 1 the stack refused or did not answer; 2 a bad argument (nothing changed)."""


def _command(
    commands: "argparse._SubParsersAction[argparse.ArgumentParser]",
    name: str,
    summary: str,
    examples: str,
) -> argparse.ArgumentParser:
    """A subcommand with its one-line summary, its examples and ``--json``."""
    command = commands.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=f"examples:\n{examples}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument(
        "--json", dest="json_output", action="store_true", help="print one JSON document"
    )
    return command


def _consumer(command: argparse.ArgumentParser, names: Sequence[str] = CONSUMERS) -> None:
    command.add_argument(
        "consumer",
        metavar="{" + ",".join(names) + "}",
        help="the consumer: " + ", ".join(names),
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blog",
        description="Operate the local blog stack (make dev), or a deployed one (--stack).",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--stack",
        metavar="NAME",
        help="operate the deployed CloudFormation stack NAME (AWS credentials and region as "
        "for the AWS CLI; AWS_ENDPOINT_URL for a local engine) instead of the local stack",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _command(
        commands,
        "status",
        "each consumer's subscription, pause, queue, DLQ, watermark and lag; the unsent outbox",
        "  blog status\n  blog status --json",
    )
    outage = commands.add_parser(
        "outage",
        help="start or end a consumer outage",
        description="Take a consumer down, or bring it back and catch it up from the archive.",
    )
    phases = outage.add_subparsers(dest="phase", required=True, metavar="PHASE")
    start = _command(
        phases,
        "start",
        "take a consumer down",
        "  blog outage start moderation --mode pause\n  blog outage start query --mode purge",
    )
    _consumer(start)
    start.add_argument(
        "--mode",
        required=True,
        metavar="{" + ",".join(ops.MODES) + "}",
        help="pause: its event source stops, messages wait in its queue; unsubscribe: its SNS "
        "subscription is removed, events never reach its queue; purge: paused and its queue "
        "emptied (SQS allows one purge a minute)",
    )
    end = _command(
        phases,
        "end",
        "restore its subscription, catch it up from the archive, resume it",
        "  blog outage end moderation --json",
    )
    _consumer(end)
    catch_up = _command(
        commands,
        "catch-up",
        "apply from the archive what a consumer missed, as its scheduled catch-up does",
        "  blog catch-up query",
    )
    _consumer(catch_up)
    rebuild = _command(
        commands,
        "rebuild",
        "rebuild the query view blue/green from the archive, then switch reads to it",
        "  blog rebuild query",
    )
    _consumer(rebuild, [ops.REBUILDABLE])
    replay = _command(
        commands,
        "replay",
        "re-apply the archive from a position (harmless: every handler is idempotent)",
        "  blog replay comments --from-position 1",
    )
    _consumer(replay)
    replay.add_argument(
        "--from-position", required=True, metavar="N", help="the first position, from 1"
    )
    dlq = commands.add_parser(
        "dlq", help="dead-letter queues", description="Operate a consumer's dead-letter queue."
    )
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    redrive = _command(
        dlq_commands,
        "redrive",
        "move a consumer's dead-lettered messages back to its queue",
        "  blog dlq redrive moderation",
    )
    _consumer(redrive)
    parked = _command(
        commands,
        "parked",
        "events a consumer holds because it could not apply them; catch-up retries them",
        "  blog parked\n  blog parked query --json",
    )
    parked.add_argument(
        "consumer",
        nargs="?",
        metavar="{" + ",".join(CONSUMERS) + "}",
        help="one consumer (default: every consumer)",
    )
    return parser


def _progress_bar(label: str, stream: TextIO) -> Callable[[int, int], None] | None:
    """A progress bar on ``stream`` when it is a terminal; none otherwise (logs, pipes)."""
    if not stream.isatty():
        return None
    finished = False

    def show(done: int, total: int) -> None:
        nonlocal finished
        if finished:
            return
        finished = done >= total
        fraction = done / total if total else 1.0
        filled = int(fraction * 30)
        bar = "#" * filled + "." * (30 - filled)
        stream.write(f"\r{label} [{bar}] {fraction:4.0%} ({done}/{total} positions)")
        if finished:
            stream.write("\n")
        stream.flush()

    return show


def _print_status(status: ops.Status) -> None:
    print(
        f"{'consumer':<11} {'subscribed':<10} {'paused':<6} {'queue':>5} {'dlq':>4}  "
        f"{'watermark / head':<18} {'lag':>5} {'parked':>6}"
    )
    for row in status.consumers:
        position = f"{row.watermark} / {row.archive_head}"
        print(
            f"{row.consumer:<11} {'yes' if row.subscribed else 'NO':<10} "
            f"{'YES' if row.paused else 'no':<6} {row.queue_depth:>5} {row.dlq_depth:>4}  "
            f"{position:<18} {row.lag:>5} {row.parked:>6}"
        )
    age = status.oldest_unsent_age_seconds
    oldest = f", oldest {age:.1f} s old" if age is not None else ""
    print(f"archive head {status.archive_head}; unsent outbox: {status.unsent_outbox}{oldest}")


def _print_parked(held: list[checkpoint.Failure]) -> None:
    if not held:
        print("nothing parked")
        return
    print(f"{'consumer':<11} {'position':>8} {'event':<17} {'tries':>5} {'parked':<6}  reason")
    for f in held:
        print(
            f"{f.consumer:<11} {f.position:>8} {f.event_type:<17} {f.tries:>5} "
            f"{'YES' if f.parked else 'no':<6}  {f.reason[:100]}"
        )
    print("`blog catch-up CONSUMER` retries them (the scheduled catch-up does every minute).")


def _print_fields(document: dict[str, Any], indent: str = "  ") -> None:
    """A report as ``name: value`` lines, nested reports indented."""
    for name, value in document.items():
        if isinstance(value, dict):
            print(f"{indent}{name}:")
            _print_fields(value, indent + "  ")
        else:
            print(f"{indent}{name}: {value}")


def _emit(as_json: bool, headline: str, document: dict[str, Any]) -> None:
    """One JSON document on stdout, or a headline and the document's fields for a person."""
    if as_json:
        print(json.dumps(document, indent=2))
        return
    print(headline)
    _print_fields({k: v for k, v in document.items() if k != "consumer"})


_COMMANDS: dict[str, type[_Arguments]] = {
    "status": Status,
    "outage start": OutageStart,
    "outage end": OutageEnd,
    "catch-up": CatchUp,
    "rebuild": Rebuild,
    "replay": Replay,
    "dlq redrive": Redrive,
    "parked": Parked,
}


class BadArguments(ValueError):
    """The command line names something that does not exist; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse(argv: Sequence[str]) -> _Arguments:
    """The validated arguments of one command; raises BadArguments before anything is done."""
    raw = vars(_parser().parse_args(argv))
    raw["aws_port"] = os.environ.get("AWS_PORT", "5000")
    command = " ".join(str(raw[k]) for k in ("command", "phase", "dlq_command") if raw.get(k))
    try:
        return _COMMANDS[command].model_validate(raw)
    except ValidationError as error:
        raise BadArguments(
            [
                f"blog {command}: {'.'.join(map(str, problem['loc']))}: {problem['msg']}"
                for problem in error.errors(include_url=False)
            ]
        ) from error


class Target(NamedTuple):
    """Where the commands act: the pause switches and how a subscription is restored."""

    consumers: ops.Consumers
    restore: ops.Resubscribe
    rebuild_step: ops.RebuildStep
    """A step of the view's chunked rebuild: run here locally, by the stack's function deployed."""


def _local(aws_port: int) -> Target:
    use_emulator(stage_environment(STAGE), endpoint(aws_port))
    return Target(RemoteConsumers(control_url(aws_port)), ops.resubscribe, ops.local_rebuild_step)


def _deployed(name: str) -> Target:
    """A deployed stack: its resources from CloudFormation, its functions' own settings."""
    resources = deployed.find(aws.client, name)
    deployed.use_settings(os.environ, deployed.settings_environment(aws.client, resources))
    consumers = deployed.StackConsumers(aws.client, resources)
    return Target(
        consumers,
        functools.partial(deployed.resubscribe, aws.client, resources),
        deployed.rebuild_step(consumers),
    )


def _logs_to_stderr() -> None:
    """The functions' log lines go to stderr: Powertools writes them to stdout, where Lambda
    reads them, but here stdout holds only the command's answer (one JSON document with
    ``--json``)."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
                handler.setStream(sys.stderr)


def run(argv: Sequence[str]) -> int:
    _logs_to_stderr()
    try:
        arguments = parse(argv)
        target = _deployed(arguments.stack) if arguments.stack else _local(arguments.aws_port)
    except BadArguments as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return 2
    except (deployed.StackNotFound, deployed.NotThisProject) as error:
        print(f"blog: {error}; nothing was changed", file=sys.stderr)
        return 2
    consumers = target.consumers
    as_json = arguments.json_output
    match arguments:
        case Status():
            status = ops.status(consumers)
            if as_json:
                print(status.model_dump_json(indent=2))
            else:
                _print_status(status)
        case OutageStart(consumer=consumer, mode=mode):
            ops.outage_start(consumers, consumer, mode)
            started = {"consumer": consumer, "outage": "started", "mode": mode}
            _emit(as_json, f"{consumer}: outage started ({mode})", started)
        case OutageEnd(consumer=consumer):
            progress = _progress_bar(f"catching {consumer} up", sys.stderr)
            report = ops.outage_end(consumers, consumer, target.restore, progress)
            ended = {"consumer": consumer, "outage": "ended", "catch_up": report.model_dump()}
            _emit(as_json, f"{consumer}: outage ended", ended)
        case CatchUp(consumer=consumer):
            report = ops.catch_up(consumer, _progress_bar(f"catching {consumer} up", sys.stderr))
            _emit(as_json, f"{consumer}: caught up", report.model_dump())
        case Rebuild(consumer=consumer):
            progress = _progress_bar(f"rebuilding {consumer}", sys.stderr)
            rebuilt = ops.rebuild_in_steps(target.rebuild_step, progress)
            _emit(as_json, f"{consumer}: rebuilt, reading {rebuilt.active}", rebuilt.model_dump())
        case Replay(consumer=consumer, from_position=position):
            replayed = ops.replay(consumer, position)
            _emit(as_json, f"{consumer}: replayed from {position}", replayed.model_dump())
        case Redrive(consumer=consumer):
            moved = ops.dlq_redrive(consumer)
            redriven = {"consumer": consumer, "moved": moved}
            _emit(as_json, f"{consumer}: {moved} messages moved back from the DLQ", redriven)
        case Parked(consumer=consumer):
            held = ops.parked(consumer)
            if as_json:
                print(json.dumps([{**f.model_dump(), "parked": f.parked} for f in held], indent=2))
            else:
                _print_parked(held)
    return 0


def main() -> None:
    try:
        sys.exit(run(sys.argv[1:]))
    except (ControlUnavailable, ops.PurgeRefused) as error:
        sys.exit(f"blog: {error}")
    except (BotoCoreError, ClientError) as error:
        where = "is `make dev` up?" if "--stack" not in sys.argv else "check the AWS settings"
        sys.exit(f"blog: AWS did not answer as expected ({error}); {where}")


if __name__ == "__main__":
    main()
