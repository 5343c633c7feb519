"""The query view table on moto: partitioned by post, listed newest first with no scan."""

import itertools
from collections import Counter
from typing import Any

from emulator.stack import Stack
from functions import aws, names, settings
from functions.dynamo import from_item
from functions.query import store
from functions.query.projection import CommentRow, PostRow, Row
from tests.helpers import PREFIX

VIEW_TABLE = names.resource(PREFIX, names.VIEW_TABLE)
BUCKET_MS = 1 << 24
"""Milliseconds per listing bucket (ids start with 12 hex digits of ms; buckets are 6)."""
_serial = itertools.count()


def post_id(bucket: int, offset: int = 0) -> str:
    ms = 0x019A00000000 + bucket * BUCKET_MS + offset
    return f"{ms:012x}{next(_serial):016x}"


def post(pid: str) -> PostRow:
    return PostRow(post_id=pid, title=f"title {pid}", version=1)


def comment(pid: str, cid: str, status: str = "approved", version: int = 2) -> CommentRow:
    return CommentRow(
        post_id=pid,
        comment_id=cid,
        content=f"on {pid}",
        status=status,  # type: ignore[arg-type]
        version=version,
    )


def put(rows: list[Row], version: str = "v1") -> None:
    for row in rows:
        store.put_if_newer(settings.load(), version, row)


def items() -> list[dict[str, Any]]:
    pages = aws.client("dynamodb").get_paginator("scan").paginate(TableName=VIEW_TABLE)
    return [from_item(i) for page in pages for i in page["Items"]]


def walk(limit: int, version: str = "v1") -> list[list[str]]:
    """Every page's post ids, following the pages to the end."""
    pages, before = [], None
    while True:
        page = store.page(settings.load(), version, before, limit)
        pages.append([r.post_id for r in page.rows if isinstance(r, PostRow)])
        if not page.more:
            return pages
        before = page.last


def test_a_post_and_its_comments_share_a_partition_and_no_key_holds_the_blog(
    deployed: Stack,
) -> None:
    # GIVEN posts in three time buckets, each with comments
    ids = [post_id(b, o) for b in (0, 1, 5) for o in (0, 1)]
    put([post(p) for p in ids] + [comment(p, f"{p}c{i}") for p in ids for i in range(2)])
    rows = [i for i in items() if "kind" in i]
    # THEN each partition holds exactly one post's rows, its post row and its two comments
    partitions = Counter(i[names.VIEW_KEY[0]] for i in rows)
    assert set(partitions) == {store.post_partition("v1", p) for p in ids}
    assert set(partitions.values()) == {3}
    # AND each listing partition holds one time bucket's posts, not the whole blog
    listing = {i[store.LISTING] for i in rows}
    assert listing == {store.listing_partition("v1", store.bucket(p)) for p in ids}
    assert len(listing) == 3
    # AND one post reads as its row and its comments, in creation order
    one = store.post_rows(settings.load(), "v1", ids[0])
    assert [r.key for r in one] == [f"{ids[0]}#", f"{ids[0]}#{ids[0]}c0", f"{ids[0]}#{ids[0]}c1"]


def test_pages_walk_every_post_once_newest_first_across_empty_buckets(deployed: Stack) -> None:
    # GIVEN 11 posts spread over buckets with long empty stretches between them
    ids = [post_id(b, o) for b in (0, 3, 4, 40, 41, 400) for o in range(2)][:11]
    put([post(p) for p in ids] + [comment(p, "c") for p in ids])
    # WHEN every page of 3 is read
    pages = walk(3)
    # THEN the pages hold every post once, newest first, 3 a page, and the last says so
    assert [len(p) for p in pages] == [3, 3, 3, 2]
    assert list(itertools.chain(*pages)) == sorted(ids, reverse=True)
    # AND each post comes with its comments
    first = store.page(settings.load(), "v1", None, 1)
    assert [r.key for r in first.rows] == [f"{ids[-1]}#", f"{ids[-1]}#c"]


def test_posts_that_arrive_during_a_walk_neither_repeat_nor_hide_others(deployed: Stack) -> None:
    ids = [post_id(2, o) for o in range(6)]
    put([post(p) for p in ids])
    config = settings.load()
    first = store.page(config, "v1", None, 2)
    # WHEN newer posts arrive (in this bucket and a later one) between pages
    put([post(post_id(2, 100)), post(post_id(9))])
    seen = [r.post_id for r in first.rows]
    before = first.last
    while before is not None:
        page = store.page(config, "v1", before, 2)
        seen += [r.post_id for r in page.rows]
        before = page.last if page.more else None
    # THEN the walk saw exactly the posts that existed when it started, once each
    assert seen == sorted(ids, reverse=True)


def test_comments_before_their_post_are_kept_but_not_listed(deployed: Stack) -> None:
    older, orphan_post, newer = post_id(1), post_id(1, 5), post_id(1, 9)
    put([post(older), post(newer), comment(orphan_post, "early"), comment(older, "c")])
    pages = walk(1)
    assert pages == [[newer], [older]]
    assert store.post_rows(settings.load(), "v1", orphan_post) == [comment(orphan_post, "early")]


def test_a_row_replaces_a_stored_one_only_if_newer(deployed: Stack) -> None:
    pid = post_id(0)
    put([post(pid), comment(pid, "c", "approved", 2), comment(pid, "c", "pending", 1)])
    assert store.post_rows(settings.load(), "v1", pid)[1] == comment(pid, "c", "approved", 2)


def test_dropping_a_version_deletes_its_rows_and_directory_and_nothing_else(
    deployed: Stack,
) -> None:
    ids = [post_id(b) for b in (0, 7, 8)]
    rows: list[Row] = [post(p) for p in ids] + [comment(p, "c") for p in ids]
    config = settings.load()
    assert store.put_rows(config, "v2", rows) == 6
    put(rows, "v1")
    assert walk(10, "v2") == walk(10, "v1") == [sorted(ids, reverse=True)]
    store.drop_version(config, "v2")
    assert store.version_rows(config, "v2") == []
    assert not [i for i in items() if str(i[names.VIEW_KEY[0]]).startswith("v2/")]
    assert len(store.version_rows(config, "v1")) == 6


def test_retired_versions_are_listed_until_forgotten(deployed: Stack) -> None:
    config = settings.load()
    store.retire(config, "v1")
    store.retire(config, "v3")
    assert sorted(store.retired(config)) == ["v1", "v3"]
    store.forget_retired(config, "v1")
    assert store.retired(config) == ["v3"]
