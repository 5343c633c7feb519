"""``blog``: operate the local stack (started with ``make dev`` or ``make emulator``).

    blog status [--json]
    blog outage start moderation|comments|query --mode pause|unsubscribe|purge
    blog outage end moderation|comments|query
    blog catch-up moderation|comments|query
    blog parked [moderation|comments|query] [--json]
    blog replay moderation|comments|query --from-position N
    blog rebuild query
    blog dlq redrive moderation|comments|query

A consumer name that does not exist is refused with exit code 2, and nothing is changed.

With ``--stack NAME`` (before the command) the same commands operate a deployed stack, on AWS
or on a local engine (``AWS_ENDPOINT_URL``): its resources are found from CloudFormation, the
settings are the stack's functions' own, pausing disables the consumer's event source mapping,
and catch-up, rebuild and replay run here against the stack's tables. A stack that does not
exist, or is not this project's, is refused with exit code 2, and nothing is changed.

AWS calls go to the emulator on ``AWS_PORT`` (default 5000); pausing and resuming a consumer
goes to the runner's control API on ``AWS_PORT + 1``.
"""

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Literal, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from emulator.config import stage_environment
from emulator.control import ControlUnavailable, RemoteConsumers, control_url
from emulator.local import STAGE, endpoint
from emulator.moto_env import use_emulator
from functions import aws
from functions.settings import VARIABLES as settings_variables
from functions.subscriptions import checkpoint
from operations import deployed, ops

Consumer = Literal["moderation", "comments", "query"]
Port = Annotated[int, Field(gt=0, lt=65535)]


StackName = Annotated[str, Field(pattern=r"^[A-Za-z][-A-Za-z0-9]{0,127}$")]


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    aws_port: Port = 5000
    stack: StackName | None = None


class Status(_Arguments):
    json_output: bool = False


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
    json_output: bool = False


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blog", description="Operate the local blog stack, or a deployed one (--stack)."
    )
    parser.add_argument(
        "--stack", help="a deployed stack's name (AWS settings as usual, AWS_ENDPOINT_URL too)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", help="consumers, queues, watermarks, the outbox")
    status.add_argument("--json", dest="json_output", action="store_true", help="print JSON")
    outage = commands.add_parser("outage", help="start or end a consumer outage")
    phases = outage.add_subparsers(dest="phase", required=True)
    start = phases.add_parser("start", help="take a consumer down")
    start.add_argument("consumer")
    start.add_argument("--mode", required=True, help="pause, unsubscribe or purge")
    phases.add_parser("end", help="bring it back and catch up").add_argument("consumer")
    commands.add_parser(
        "catch-up", help="apply from the archive what a consumer missed"
    ).add_argument("consumer")
    commands.add_parser("rebuild", help="rebuild a view from the archive").add_argument("consumer")
    replay = commands.add_parser("replay", help="re-apply the archive from a position")
    replay.add_argument("consumer")
    replay.add_argument("--from-position", required=True, help="the first position, from 1")
    parked = commands.add_parser(
        "parked", help="events a consumer holds and could not apply (catch-up retries them)"
    )
    parked.add_argument("consumer", nargs="?")
    parked.add_argument("--json", dest="json_output", action="store_true", help="print JSON")
    dlq = commands.add_parser("dlq", help="dead-letter queues")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True)
    dlq_commands.add_parser("redrive", help="move messages back to the queue").add_argument(
        "consumer"
    )
    return parser


def _progress_bar(label: str) -> Callable[[int, int], None]:
    finished = False

    def show(done: int, total: int) -> None:
        nonlocal finished
        if finished:
            return
        finished = done >= total
        fraction = done / total if total else 1.0
        filled = int(fraction * 30)
        bar = "#" * filled + "." * (30 - filled)
        sys.stderr.write(f"\r{label} [{bar}] {fraction:4.0%} ({done}/{total} positions)")
        if finished:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _print_status(status: ops.Status, as_json: bool) -> None:
    if as_json:
        print(status.model_dump_json(indent=2))
        return
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


def _print_parked(held: list[checkpoint.Failure], as_json: bool) -> None:
    if as_json:
        print(json.dumps([{**f.model_dump(), "parked": f.parked} for f in held], indent=2))
        return
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


def _local(aws_port: int) -> Target:
    use_emulator(stage_environment(STAGE), endpoint(aws_port))
    return Target(RemoteConsumers(control_url(aws_port)), ops.resubscribe)


def _deployed(name: str) -> Target:
    """A deployed stack: its resources from CloudFormation, its functions' own settings."""
    resources = deployed.find(aws.client, name)
    for function in resources.functions.values():
        variables = (
            aws.client("lambda")
            .get_function_configuration(FunctionName=function)
            .get("Environment", {})
            .get("Variables", {})
        )
        for variable, value in variables.items():
            if variable in settings_variables:
                os.environ[variable] = value
    os.environ.update(resources.environment())
    return Target(
        deployed.StackConsumers(aws.client, resources),
        functools.partial(deployed.resubscribe, aws.client, resources),
    )


def run(argv: Sequence[str]) -> int:
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
    match arguments:
        case Status(json_output=as_json):
            _print_status(ops.status(consumers), as_json)
        case OutageStart(consumer=consumer, mode=mode):
            ops.outage_start(consumers, consumer, mode)
            print(f"{consumer}: outage started ({mode})")
        case OutageEnd(consumer=consumer):
            report = ops.outage_end(
                consumers, consumer, target.restore, _progress_bar(f"catching {consumer} up")
            )
            print(f"{consumer}: outage ended")
            print(report.model_dump_json(indent=2))
        case CatchUp(consumer=consumer):
            report = ops.catch_up(consumer, _progress_bar(f"catching {consumer} up"))
            print(report.model_dump_json(indent=2))
        case Rebuild(consumer=consumer):
            rebuilt = ops.rebuild(_progress_bar(f"rebuilding {consumer}"))
            print(rebuilt.model_dump_json(indent=2))
        case Replay(consumer=consumer, from_position=position):
            print(ops.replay(consumer, position).model_dump_json(indent=2))
        case Parked(consumer=consumer, json_output=as_json):
            _print_parked(ops.parked(consumer), as_json)
        case Redrive(consumer=consumer):
            moved = ops.dlq_redrive(consumer)
            print(f"{consumer}: {moved} messages moved back from the dead-letter queue")
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
