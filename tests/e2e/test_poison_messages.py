"""Acceptance 4: a poison message in each consumer queue ends in its DLQ; its batch goes on.

Consumers are paused while their queue fills, so the poison message and the good messages
arrive in one batch, as they would behind a paused or slow Lambda.
"""

from emulator.runner import EventSourceRunner
from functions import aws, names
from tests.conftest import Api
from tests.e2e.conftest import Records
from tests.helpers import PREFIX, queue_depth, queue_url, receive_all

CONSUMER_SOURCES = {
    "moderation": "moderation_consumer",
    "comments": "comments_consumer",
    "query": "query_consumer",
}
MAX_RECEIVE_COUNT = 5  # infra/template.yaml's default


def poison(consumer: str, body: str) -> str:
    queue = names.queue(PREFIX, consumer)
    message_id: str = aws.client("sqs").send_message(QueueUrl=queue_url(queue), MessageBody=body)[
        "MessageId"
    ]
    return message_id


def test_poison_message_goes_to_its_dlq_and_the_batch_is_processed(
    api: Api, runner: EventSourceRunner, service_logs: Records
) -> None:
    # GIVEN paused consumers and a post with a comment, published
    for source in CONSUMER_SOURCES.values():
        runner.pause(source)
    _, post = api.post("/posts", {"title": "t"})
    _, [comment] = api.post(f"/posts/{post['id']}/comments", {"content": "fine"})
    runner.drain()
    # AND a poison message behind the good ones in each queue, the comments queue once
    # moderation has produced its message
    poisoned = {
        "moderation": poison("moderation", "not json at all"),
        "query": poison("query", '{"type": "PostCreated", "version": 1}'),
    }
    runner.resume("moderation_consumer")
    runner.drain()
    poisoned["comments"] = poison("comments", '{"type": "Unheard", "version": 1}')

    # WHEN every consumer runs again
    runner.resume("comments_consumer")
    runner.resume("query_consumer")
    runner.drain()

    # THEN the good messages of every batch were processed
    assert api.get("/posts")[1][post["id"]]["comments"] == [
        {"id": comment["id"], "content": "fine", "status": "approved"}
    ]
    # AND each poison message is in its consumer's DLQ, alone, after the configured receives
    for consumer, message_id in poisoned.items():
        [dead] = receive_all(names.dead_letter_queue(PREFIX, consumer))
        assert dead["MessageId"] == message_id
        assert queue_depth(names.queue(PREFIX, consumer)) == 0
        failures = [r for r in service_logs.records if getattr(r, "message_id", None) == message_id]
        assert len(failures) == MAX_RECEIVE_COUNT
        assert all(getattr(r, "reason", "") for r in failures)
    assert runner.sources["query_consumer"].stats.failures == MAX_RECEIVE_COUNT
