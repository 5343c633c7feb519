"""Durable subscriptions: how every consumer gets every event, even the ones its queue lost.

A consumer declares a ``Subscription`` (what it consumes, how it handles each event, which
table holds its checkpoint) and gets, with no recovery code of its own:

- ``live``: the SQS path, which applies each delivered event and records its archive position
  in the consumer's checkpoint (one write a batch);
- ``follower``: catch-up, which compares the checkpoint with the archive head, reads exactly
  the positions the live path did not apply, and applies them with the *same* handler; and
  replay from a position;
- ``checkpoint``: the watermark (every position up to it is applied) and the positions applied
  above it, kept in the consumer's own table.

The queue gives latency; the archive and the follower give completeness. A consumer that was
paused, unsubscribed, purged or deployed late converges by itself on its next catch-up.
"""
