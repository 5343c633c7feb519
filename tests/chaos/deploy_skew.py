"""The pipeline machine's deploy-skew steps: producers ahead of consumers, handlers that fail.

CloudFormation updates a stack's functions one at a time, so for a while producers run newer
code than consumers. The steps here, mixed into ``Pipeline`` (``test_pipeline_machine.py``):

- **old consumer code**: the consumers read comment events up to version 1 only
  (``events.READABLE_VERSIONS``), while the HTTP API (the producer) writes version 2, with
  authors. Every comment event is held by its consumers until a later step, or recovery,
  upgrades them; the held events are applied by the catch-up that follows.
- **a newer producer's added field**: a post written as a newer producer would (its post row,
  and an outbox record holding a v1 ``PostCreated`` with a field this code does not know).
  Old and new consumers read it: it must reach the view.
- **a handler failing for a while**: every write of one consumer fails from one step until a
  later one (or recovery); its events are parked after their tries, never dead-lettered, and
  applied by catch-up once it recovers.

While any of these is owed a catch-up, ``the_live_path_alone_converges`` does not apply: a held
event is the catch-up's to apply, by design. The end state must be the one a consumer that
always ran the new code reaches: the oracle, with every author, nothing parked, lag 0.
"""

import contextlib
import json
from collections import Counter
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, precondition, rule

from emulator.runner import EventSourceRunner
from functions import aws, events, names
from functions.dynamo import to_item
from functions.events import PostCreated, PostData
from functions.ids import new_id
from functions.outbox import OutboxRecord
from tests.faults import failing
from tests.helpers import PREFIX

posts = Bundle("posts")  # the machine's bundle of post ids (bundles are known by name)
AUTHORS = st.none() | st.sampled_from(["Ada", "Grace Hopper", "  Linus  ", "日本語"])
OLD_CODE_READS = dict.fromkeys(("CommentCreated", "CommentModerated", "CommentUpdated"), 1)
"""What consumers before the author change read: comment events up to version 1."""
VIEW = names.resource(PREFIX, names.VIEW_TABLE)
MODERATION = names.resource(PREFIX, names.MODERATION_TABLE)
COMMENTS = names.resource(PREFIX, names.COMMENTS_TABLE)


def _tables(params: dict[str, Any], action: str) -> set[str]:
    items = [item[action] for item in params.get("TransactItems", []) if action in item]
    return {item.get("TableName") for item in items}


HANDLER_WRITES = {
    # the consumer's own write, told apart from the HTTP API's (which also writes comments)
    # (its row writes: conditional on the row's version; not the rebuild's pointer writes)
    "query": (
        "PutItem",
        lambda p: (
            p.get("TableName") == VIEW and ":version" in p.get("ExpressionAttributeValues", {})
        ),
    ),
    "moderation": ("TransactWriteItems", lambda p: MODERATION in _tables(p, "Put")),
    "comments": ("TransactWriteItems", lambda p: COMMENTS in _tables(p, "Update")),
}
SKEW_FAULTS = ("deploy_skew", "newer_producer_added_field", "handler_failing_for_a_while")
"""The fault kinds these steps inject (the scripted scenario injects each)."""


class DeploySkew:
    """Rules for ``Pipeline``; its ``__init__`` calls ``_init_skew`` and teardown ``_skew_over``."""

    runner: EventSourceRunner
    faults: Counter[str]
    titles: dict[str, str]
    authors: dict[str, str]

    def _init_skew(self) -> None:
        self.old_code: contextlib.ExitStack | None = None
        self.handler_failing: tuple[str, contextlib.ExitStack, list[Any]] | None = None
        self.owed_catch_up = False
        """Events may be held: only a catch-up applies them."""

    def _write_comment(self, post_id: str, content: str, author: str | None = None) -> None:
        raise NotImplementedError  # the machine's

    @rule(post=posts, content=st.sampled_from(["lovely weather", "an orange"]), author=AUTHORS)
    def consumers_run_old_code_or_are_upgraded(
        self, post: str, content: str, author: str | None
    ) -> None:
        """The consumers fall behind the producer (it writes a signed comment, v2, that they
        cannot read), or they are upgraded."""
        if self.old_code is None:
            self.old_code = contextlib.ExitStack()
            saved = dict(events.READABLE_VERSIONS)
            self.old_code.callback(events.READABLE_VERSIONS.update, saved)
            events.READABLE_VERSIONS.update(OLD_CODE_READS)
            self.owed_catch_up = True
            self._write_comment(post, content, author)
            self.faults["deploy_skew"] += 1
        else:
            self._upgrade()

    def _upgrade(self) -> None:
        if self.old_code is not None:
            self.old_code.close()
            self.old_code = None

    @rule(title=st.sampled_from(["from a newer producer", "café"]))
    def newer_producer_writes_a_post(self, title: str) -> None:
        """A post as a newer producer writes it: a v1 PostCreated with an added field."""
        post = PostData(id=new_id(), title=title)
        event = PostCreated.of(post)
        payload = event.model_dump(mode="json")
        payload = {**payload, "trace": "t-1", "data": {**payload["data"], "subtitle": "new"}}
        record = OutboxRecord.new(event).model_copy(update={"payload": json.dumps(payload)})
        dynamodb = aws.client("dynamodb")
        dynamodb.put_item(
            TableName=names.resource(PREFIX, names.POSTS_TABLE),
            Item=to_item({names.POSTS_KEY: post.id, "title": post.title}),
        )
        dynamodb.put_item(
            TableName=names.resource(PREFIX, names.OUTBOX_TABLE),
            Item=to_item(record.model_dump(exclude_none=True)),
        )
        self.titles[post.id] = title
        self.faults["newer_producer_added_field"] += 1

    @rule(consumer=st.sampled_from(sorted(HANDLER_WRITES)))
    def handler_fails_or_recovers(self, consumer: str) -> None:
        """Every write of ``consumer``'s handler fails from now until a later step."""
        if self.handler_failing is None:
            operation, when = HANDLER_WRITES[consumer]
            stack = contextlib.ExitStack()
            crash = RuntimeError(f"{consumer}'s handler is failing")
            failed = stack.enter_context(failing("dynamodb", operation, crash, when=when))
            self.handler_failing = (consumer, stack, failed)
            self.owed_catch_up = True
        else:
            self._handler_recovers()

    def _handler_recovers(self) -> None:
        if self.handler_failing is not None:
            consumer, stack, failed = self.handler_failing
            stack.close()
            self.handler_failing = None
            if failed:
                self.faults["handler_failing_for_a_while"] += 1
                self.faults[f"handler_of_{consumer}_failed_calls"] += len(failed)

    @precondition(lambda self: self.old_code is None and self.handler_failing is None)
    @rule()
    def every_catch_up_runs(self) -> None:
        """Each consumer's scheduled catch-up, in rounds until nothing new is archived: what
        applies the events held while consumers ran old code or failed."""
        self._catch_everyone_up()
        self.owed_catch_up = False

    def _catch_everyone_up(self) -> None:
        raise NotImplementedError  # the machine's

    @staticmethod
    def _read_as_new_code(payload: str) -> events.Event:
        """The oracle reads the archive as the new code does, whatever the consumers run."""
        saved = dict(events.READABLE_VERSIONS)
        events.READABLE_VERSIONS.update(events.CURRENT_VERSIONS)
        try:
            return events.parse_event(payload)
        finally:
            events.READABLE_VERSIONS.update(saved)

    def _skew_over(self) -> None:
        """Recovery: the consumers are upgraded and the handlers recover."""
        self._upgrade()
        self._handler_recovers()

    def _skew_healthy(self) -> bool:
        return self.old_code is None and self.handler_failing is None and not self.owed_catch_up
