"""The projection at its edges (mutants that survived `make mutants`). Pure."""

from functions.events import (
    CommentCreated,
    CommentData,
    CommentModerated,
    CommentUpdated,
    PostCreated,
    PostData,
)
from functions.query.projection import (
    CommentRow,
    PostRow,
    Row,
    View,
    apply,
    fold,
    render,
    render_view,
    rows_for,
    supersedes,
)


def comment(comment_id: str, post_id: str, content: str, status: str, version: int) -> CommentData:
    return CommentData.model_validate(
        {
            "id": comment_id,
            "postId": post_id,
            "content": content,
            "status": status,
            "commentVersion": version,
        }
    )


def test_each_event_writes_its_rows_with_their_keys() -> None:
    # GIVEN a post, a comment on it and its moderation
    post = PostCreated.of(PostData(id="p1", title="Hello"))
    created = CommentCreated.of(comment("c1", "p1", "hi", "pending", 1))
    updated = CommentUpdated.of(comment("c1", "p1", "hi", "approved", 2))
    moderated = CommentModerated.model_validate(
        {"aggregate_id": "c1", "data": comment("c1", "p1", "hi", "approved", 1).model_dump()}
    )
    # THEN a post is one post row at version 1, keyed by its id
    assert rows_for(post) == [PostRow(post_id="p1", title="Hello", version=1)]
    assert rows_for(post)[0].key == "p1#"
    assert rows_for(post)[0].kind == "post"
    # AND each comment event is one comment row at the comment's version, keyed by both ids
    [row] = rows_for(updated)
    assert row == CommentRow(
        post_id="p1", comment_id="c1", content="hi", status="approved", version=2
    )
    assert (row.key, row.kind) == ("p1#c1", "comment")
    assert rows_for(created)[0].version == 1
    # AND a moderation decision writes no row
    assert rows_for(moderated) == []


def test_a_row_supersedes_only_an_older_version_or_nothing() -> None:
    older = PostRow(post_id="p1", title="old", version=1)
    newer = PostRow(post_id="p1", title="new", version=2)
    assert supersedes(older, None)
    assert supersedes(newer, older)
    assert not supersedes(older, newer)
    assert not supersedes(newer, newer)


def test_fold_builds_on_the_view_it_is_given() -> None:
    # GIVEN a view holding a post
    view: View = fold([PostCreated.of(PostData(id="p1", title="Hello"))])
    # WHEN a comment is folded into it
    result = fold([CommentCreated.of(comment("c1", "p1", "hi", "pending", 1))], view)
    # THEN the result is that view, now with the comment
    assert result is view
    assert sorted(result) == ["p1#", "p1#c1"]
    # AND apply leaves its input alone
    assert sorted(apply(view, PostCreated.of(PostData(id="p2", title="Two")))) == [
        "p1#",
        "p1#c1",
        "p2#",
    ]
    assert sorted(view) == ["p1#", "p1#c1"]


def test_render_shows_posts_without_comments_and_comments_under_their_own_post() -> None:
    rows: list[Row] = [
        PostRow(post_id="p1", title="One", version=1),
        CommentRow(post_id="p2", comment_id="c1", content="a", status="approved", version=2),
        PostRow(post_id="p2", title="Two", version=1),
        CommentRow(post_id="p3", comment_id="c2", content="orphan", status="pending", version=1),
    ]
    assert render(rows) == {
        "p1": {"id": "p1", "title": "One", "comments": []},
        "p2": {
            "id": "p2",
            "title": "Two",
            "comments": [{"id": "c1", "content": "a", "status": "approved"}],
        },
    }


def test_render_view_lists_comments_in_key_order_whatever_the_order_applied() -> None:
    # GIVEN comments applied newest id first
    view = fold(
        [
            CommentCreated.of(comment("c3", "p1", "third", "pending", 1)),
            CommentCreated.of(comment("c1", "p1", "first", "pending", 1)),
            PostCreated.of(PostData(id="p1", title="Hello")),
            CommentCreated.of(comment("c2", "p1", "second", "pending", 1)),
        ]
    )
    # THEN they are shown in id order (ids sort by creation time)
    comments = render_view(view)["p1"]["comments"]
    assert isinstance(comments, list)
    assert [c["id"] for c in comments] == ["c1", "c2", "c3"]
