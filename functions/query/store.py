"""The query view table (adapter): partitioned by post, listed through a time-bucketed index.

Keys (attributes ``view`` / ``key``, ``names.VIEW_KEY``), for view version ``<v>``:

- a post and its comments share one partition, ``<v>/post/<post_id>``; the sort key is the
  projection's row key (``<post_id>#`` for the post, ``<post_id>#<comment_id>`` for a comment),
  so one query reads a post, its comments in creation order;
- every row also carries ``listing`` = ``<v>/bucket/<bucket>``, the hash key of the sparse
  index ``listing-index`` (range key ``key``): ``<bucket>`` is the first ``BUCKET_CHARS``
  characters of the post id, a time bucket of about 4.7 hours (ids start with 48 bits of
  milliseconds). Listing newest first walks one bucket's index partition backwards, then the
  next older bucket: no scan, and no key holds the whole blog;
- the bucket directory, ``<v>/buckets`` / ``<bucket>``, one item per bucket that has a post, so
  the walk jumps over empty time buckets with one query;
- the pointer row (``meta`` / ``active``) names the version reads use and, during a rebuild,
  the version being built, which live updates also write; ``meta`` / ``retired#<v>`` marks a
  version to drop in the background after a rebuild switched away from it;
- each version's checkpoint (a track of the query subscription, ``functions.subscriptions``),
  under ``~checkpoint#query#<version>``.
"""

import contextlib
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

from pydantic import BaseModel, TypeAdapter

from functions import aws, names
from functions.dynamo import batch_write, from_item, to_item
from functions.query.projection import PostRow, Row
from functions.settings import Settings

PARTITION, SORT = names.VIEW_KEY
LISTING = "listing"
LISTING_INDEX = "listing-index"
LISTING_KEY = (LISTING, SORT)
BUCKET_CHARS = 6
"""Post id characters that name its time bucket: 6 hex digits = 2**24 ms, about 4.7 hours."""
DEFAULT_VERSION = "v1"
_META = "meta"
_POINTER = {PARTITION: _META, SORT: "active"}
_RETIRED = "retired#"
_ROW = TypeAdapter[Row](Row)
_DIRECTORY_STEP = 10
"""Buckets read from the directory per call while walking."""
_BATCH = 25
"""Items per BatchWriteItem (DynamoDB's maximum)."""


class Pointer(BaseModel):
    active: str = DEFAULT_VERSION
    building: str | None = None

    @property
    def written(self) -> list[str]:
        """The versions a live update writes: the active one and any being built."""
        return [self.active] + ([self.building] if self.building else [])


def _table(settings: Settings) -> str:
    return settings.table(names.VIEW_TABLE)


def bucket(post_id: str) -> str:
    return post_id[:BUCKET_CHARS]


def post_partition(version: str, post_id: str) -> str:
    return f"{version}/post/{post_id}"


def listing_partition(version: str, bucket_name: str) -> str:
    return f"{version}/bucket/{bucket_name}"


def _directory(version: str) -> str:
    return f"{version}/buckets"


def row_item(version: str, row: Row) -> dict[str, Any]:
    return {
        PARTITION: post_partition(version, row.post_id),
        SORT: row.key,
        LISTING: listing_partition(version, bucket(row.post_id)),
        **row.model_dump(exclude_none=True),
    }


def directory_item(version: str, bucket_name: str) -> dict[str, Any]:
    return {PARTITION: _directory(version), SORT: bucket_name}


def row_of_item(item: dict[str, Any]) -> Row:
    """A row from its stored item (typed JSON), whatever version holds it."""
    return _row(item)


def _row(item: dict[str, Any]) -> Row:
    values = from_item(item)
    for attribute in (PARTITION, SORT, LISTING):
        values.pop(attribute, None)
    return _ROW.validate_python(values)


# ---- the pointer and retired versions ------------------------------------------------------


def pointer(settings: Settings) -> Pointer:
    response = aws.client("dynamodb").get_item(
        TableName=_table(settings), Key=to_item(_POINTER), ConsistentRead=True
    )
    item = response.get("Item")
    return Pointer.model_validate(from_item(item)) if item else Pointer()


class PointerMoved(Exception):
    """The pointer is not what this writer read: another rebuild took over."""


def save_pointer(settings: Settings, value: Pointer, expected: Pointer) -> None:
    """Replace the pointer, only if it still is ``expected`` (a missing row is the default)."""
    building = "building = :building" if expected.building else "attribute_not_exists(building)"
    condition = f"active = :active AND {building}"
    values = {":active": expected.active}
    if expected.building:
        values[":building"] = expected.building
    if expected == Pointer():  # the row may not exist yet
        condition = f"attribute_not_exists(active) OR ({condition})"
    client = aws.client("dynamodb")
    try:
        client.put_item(
            TableName=_table(settings),
            Item=to_item({**_POINTER, **value.model_dump(exclude_none=True)}),
            ConditionExpression=condition,
            ExpressionAttributeValues=to_item(values),
        )
    except client.exceptions.ConditionalCheckFailedException as error:
        raise PointerMoved(f"the view pointer is no longer {expected}") from error


def active_version(settings: Settings) -> str:
    return pointer(settings).active


def retire(settings: Settings, version: str) -> None:
    """Mark ``version`` to be dropped in the background (one write, whatever its size)."""
    aws.client("dynamodb").put_item(
        TableName=_table(settings), Item=to_item({PARTITION: _META, SORT: _RETIRED + version})
    )


def retired(settings: Settings) -> list[str]:
    response = aws.client("dynamodb").query(
        TableName=_table(settings),
        KeyConditionExpression="#view = :meta AND begins_with(#sort, :retired)",
        ExpressionAttributeNames={"#view": PARTITION, "#sort": SORT},
        ExpressionAttributeValues=to_item({":meta": _META, ":retired": _RETIRED}),
        ConsistentRead=True,
    )
    return [str(from_item(i)[SORT]).removeprefix(_RETIRED) for i in response["Items"]]


def forget_retired(settings: Settings, version: str) -> None:
    aws.client("dynamodb").delete_item(
        TableName=_table(settings), Key=to_item({PARTITION: _META, SORT: _RETIRED + version})
    )


# ---- writes ---------------------------------------------------------------------------------


def put_rows(settings: Settings, version: str, rows: Iterable[Row]) -> int:
    """Write rows unconditionally, 25 to a call: only for a version nobody else writes yet.

    The bucket directory items of their posts go with them. Each call's items are made just
    before it: a rebuild's whole view as request items would be several times the view in
    memory, and time in the garbage collector.
    """
    rows = list(rows)
    for start in range(0, len(rows), _BATCH):
        chunk = rows[start : start + _BATCH]
        batch_write(
            _table(settings),
            [{"PutRequest": {"Item": to_item(row_item(version, r))}} for r in chunk],
        )
    buckets = sorted({bucket(r.post_id) for r in rows if isinstance(r, PostRow)})
    batch_write(
        _table(settings),
        [{"PutRequest": {"Item": to_item(directory_item(version, b))}} for b in buckets],
    )
    return len(rows)


_listed_this_batch: ContextVar[set[tuple[str, str, str]] | None] = ContextVar(
    "listed_this_batch", default=None
)


@contextlib.contextmanager
def one_directory_write_a_batch() -> Iterator[None]:
    """Within it, each bucket's directory entry is written once: the write is idempotent, and
    a batch's posts mostly share their bucket. Only for one batch: a version dropped later
    takes its directory with it."""
    token = _listed_this_batch.set(set())
    try:
        yield
    finally:
        _listed_this_batch.reset(token)


def _list_bucket(settings: Settings, version: str, bucket_name: str) -> None:
    """Put ``bucket_name`` in ``version``'s directory, unless this batch did already."""
    listed = _listed_this_batch.get()
    key = (_table(settings), version, bucket_name)
    if listed is not None and key in listed:
        return
    aws.client("dynamodb").put_item(
        TableName=_table(settings), Item=to_item(directory_item(version, bucket_name))
    )
    if listed is not None:
        listed.add(key)


def put_if_newer(settings: Settings, version: str, row: Row) -> bool:
    """Write ``row`` unless the stored row is as new or newer; True if it was written.

    The same rule as ``projection.supersedes``, enforced by DynamoDB as a condition. A post's
    bucket goes into the directory first (idempotent), so a listed post is never in a bucket
    the walk does not know.
    """
    client = aws.client("dynamodb")
    if isinstance(row, PostRow):
        _list_bucket(settings, version, bucket(row.post_id))
    try:
        client.put_item(
            TableName=_table(settings),
            Item=to_item(row_item(version, row)),
            ConditionExpression="attribute_not_exists(#sort) OR #version < :version",
            ExpressionAttributeNames={"#sort": SORT, "#version": "version"},
            ExpressionAttributeValues=to_item({":version": row.version}),
        )
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


# ---- reads ----------------------------------------------------------------------------------


def post_rows(settings: Settings, version: str, post_id: str) -> list[Row]:
    """One post's rows, from its own partition: one query (more only past 1 MB of comments)."""
    pages = (
        aws.client("dynamodb")
        .get_paginator("query")
        .paginate(
            TableName=_table(settings),
            KeyConditionExpression="#view = :view",
            ExpressionAttributeNames={"#view": PARTITION},
            ExpressionAttributeValues=to_item({":view": post_partition(version, post_id)}),
            ConsistentRead=True,
        )
    )
    return [_row(item) for page in pages for item in page["Items"]]


def _buckets_from(settings: Settings, version: str, first: str | None) -> Iterator[str]:
    """The directory's buckets, newest first, from ``first`` (inclusive) down."""
    condition = "#view = :dir" + (" AND #sort <= :first" if first is not None else "")
    values = {":dir": _directory(version), **({":first": first} if first is not None else {})}
    attribute_names = {"#view": PARTITION, **({"#sort": SORT} if first is not None else {})}
    start: dict[str, Any] | None = None
    while True:
        response = aws.client("dynamodb").query(
            TableName=_table(settings),
            KeyConditionExpression=condition,
            ExpressionAttributeNames=attribute_names,
            ExpressionAttributeValues=to_item(values),
            ScanIndexForward=False,
            Limit=_DIRECTORY_STEP,
            **({"ExclusiveStartKey": start} if start else {}),
        )
        yield from (str(from_item(i)[SORT]) for i in response["Items"])
        start = response.get("LastEvaluatedKey")
        if start is None:
            return


def _listed(
    settings: Settings, version: str, before: str | None, step: int, keys_only: bool = False
) -> Iterator[dict[str, Any]]:
    """Every row of the posts older than ``before`` (all posts if None), newest post first;
    within a post, its comments newest first and then the post row. Read lazily, ``step``
    items a call, from the listing index."""
    for bucket_name in _buckets_from(settings, version, None if before is None else bucket(before)):
        condition = "#listing = :bucket"
        names_: dict[str, str] = {"#listing": LISTING}
        values = {":bucket": listing_partition(version, bucket_name)}
        if before:
            condition += " AND #sort < :before"
            names_["#sort"] = SORT
            values[":before"] = f"{before}#"
        request: dict[str, Any] = {"ScanIndexForward": False, "Limit": step}
        if keys_only:
            request["ProjectionExpression"] = "#view, #sort"
            names_ |= {"#view": PARTITION, "#sort": SORT}
        request |= {
            "TableName": _table(settings),
            "IndexName": LISTING_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names_,
            "ExpressionAttributeValues": to_item(values),
        }
        while True:
            response = aws.client("dynamodb").query(**request)
            yield from response["Items"]
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def version_rows(settings: Settings, version: str) -> list[Row]:
    """Every row of a version, through the listing index (for tests and tools: unbounded)."""
    return [_row(item) for item in _listed(settings, version, None, step=1000)]


class Page(BaseModel):
    rows: list[Row]
    """The page's post rows and their comments' rows, newest post first."""
    last: str | None
    """The id of the page's last (oldest) post."""
    more: bool
    """Whether the view has rows older than the page's last post."""


def page(settings: Settings, version: str, before: str | None, limit: int) -> Page:
    """At most ``limit`` posts older than ``before``, newest first, with their comments.

    Read from the listing index, ``3 * limit + 1`` items a call (room for a post and two
    comments each): the calls a page costs depend on the page, not on the size of the blog.
    """
    rows: list[Row] = []
    comments: list[Row] = []
    posts = 0
    listed = _listed(settings, version, before, step=3 * limit + 1)
    for item in listed:
        row = _row(item)
        if not isinstance(row, PostRow):
            if comments and comments[-1].post_id != row.post_id:
                comments = []  # comments of a post whose row has not arrived: not shown
            comments.append(row)
            continue
        mine = [c for c in comments if c.post_id == row.post_id]
        rows += [row, *reversed(mine)]
        comments = []
        posts += 1
        if posts == limit:
            more = next(listed, None) is not None
            return Page(rows=rows, last=row.post_id, more=more)
    return Page(rows=rows, last=None, more=False)


# ---- dropping a version ---------------------------------------------------------------------


def drop_version(settings: Settings, version: str) -> None:
    """Delete a version's rows and its bucket directory (its checkpoint is the subscription's
    to drop): found through the listing index, so a version of any size is deleted in steps."""
    keys = [
        {PARTITION: from_item(i)[PARTITION], SORT: from_item(i)[SORT]}
        for i in _listed(settings, version, None, step=1000, keys_only=True)
    ]
    keys += [
        {PARTITION: _directory(version), SORT: b} for b in _buckets_from(settings, version, None)
    ]
    batch_write(_table(settings), [{"DeleteRequest": {"Key": to_item(k)}} for k in keys])
