"""The web page's operations panel for every consumer, and paging through posts (issues 11, 13).

Headless Chromium against ``python -m emulator dev``, with the fixtures and helpers of
``tests/e2e/test_browser.py`` (skipped the same way when Chromium is missing outside CI).
"""

import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Request, expect

from tests.e2e import test_browser as shared
from tests.e2e.conftest import LocalStack
from tests.e2e.test_browser import Blog, comment_texts
from tools.api_client import HttpApi

pytestmark = shared.pytestmark
browser = shared.browser
screenshots = shared.screenshots
blog = shared.blog
"""The shared fixtures, registered here by name."""

PAGE = 2


def call(stack: LocalStack, method: str, path: str, body: Any = None) -> tuple[Any, str | None]:
    """An API call outside the page: its JSON answer and its Link header."""
    response = HttpApi(stack.url).request(method, path, body)
    assert response.status < 300, response.body
    return response.json(), response.header("Link")


@contextlib.contextmanager
def opened_at(browser: Browser, stack: LocalStack, shots: Path, path: str) -> Iterator[Blog]:
    """The page at ``path`` (``opened`` always loads ``/``), closed as ``opened`` closes it:
    no request cut off mid-answer (``chalice local`` would log a broken pipe)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    blog = Blog(page, shots)
    in_flight: set[Request] = set()
    page.on("pageerror", lambda error: blog.page_errors.append(str(error)))
    page.on("request", lambda request: in_flight.add(request))
    page.on("requestfinished", lambda request: in_flight.discard(request))
    page.on("requestfailed", lambda request: in_flight.discard(request))
    try:
        page.goto(stack.url + path)
        expect(page.locator("#updated")).to_contain_text("updated")
        yield blog
    finally:
        page.route("**/*", lambda route: route.abort())
        deadline = time.monotonic() + 10
        while in_flight and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        context.close()
    assert blog.page_errors == []


def every_post_id(stack: LocalStack) -> list[str]:
    """The view's post ids, newest first, by following GET /posts's Link headers."""
    ids: list[str] = []
    path: str | None = "/posts?limit=200"
    while path is not None:
        posts, link = call(stack, "GET", path)
        ids += list(posts)
        match = re.match(r'<([^>]+)>; rel="next"', link or "")
        path = "/" + match.group(1) if match else None
    return ids


@pytest.mark.parametrize("mode", ["pause", "unsubscribe", "purge"])
def test_an_outage_of_moderation_started_and_ended_from_the_panel(blog: Blog, mode: str) -> None:
    page = blog.page
    expect(page.locator("#ops")).to_be_visible()
    post = blog.publish(f"Moderated later ({mode})")
    # WHEN moderation goes down from the panel
    page.select_option("#outage-consumer", "moderation")
    page.select_option("#outage-mode", mode)
    page.click("#outage-start")
    expect(page.locator("#outage-result")).to_contain_text(f"Outage started ({mode}) of moderation")
    expect(page.locator("#outage-state")).to_contain_text("moderation is down")
    row = page.locator("#consumers tr[data-consumer=moderation]")
    expect(row.locator("td").nth(1 if mode == "unsubscribe" else 2)).to_have_text(
        "NO" if mode == "unsubscribe" else "YES"
    )
    # AND comments are written meanwhile: nothing decides them
    blog.comment(post, "Fine weather")
    blog.comment(post, "An orange sky")
    expect(comment_texts(post, "pending")).to_have_count(2)
    # the panel shows moderation's watermark behind the archive head, and its lag
    expect(row.locator("td").nth(6)).not_to_have_text("0")
    blog.shot(f"moderation-{mode}-1-down")
    # THEN ending it from the panel recovers the missed comments, and each shows its final status
    page.click("#outage-end")
    expect(page.locator("#outage-result")).to_contain_text("Outage ended of moderation")
    expect(page.locator("#outage-result")).to_contain_text("recovered")
    expect(page.locator("#outage-state")).to_have_text("moderation is live")
    expect(comment_texts(post, "approved")).to_have_text(["Fine weather"])
    expect(comment_texts(post, "rejected")).to_have_text(["rejected"])
    expect(comment_texts(post, "pending")).to_have_count(0)
    # AND every consumer's row shows its watermark and the head, no lag (what the live path
    # applied is marked, though the watermark moves only at the next catch-up), nothing parked
    for consumer in ("moderation", "comments", "query"):
        cells = page.locator(f"#consumers tr[data-consumer={consumer}] td")
        expect(cells.nth(5)).to_have_text(re.compile(r"^\d+ / \d+$"))
        expect(cells.nth(6)).to_have_text("0")
        expect(cells.nth(7)).to_have_text("0")
    blog.shot(f"moderation-{mode}-2-recovered")


def test_the_panel_offers_every_consumer_and_rebuilds_only_the_view(blog: Blog) -> None:
    page = blog.page
    options = page.locator("#outage-consumer option")
    expect(options).to_have_text(["moderation", "comments", "query"])
    expect(page.locator("#consumers tr")).to_have_count(3)
    expect(page.locator("#consumers")).not_to_contain_text("live only")
    page.select_option("#outage-consumer", "comments")
    expect(page.locator("#outage-state")).to_have_text("comments is live")
    expect(page.get_by_role("heading", name="Rebuild the query view")).to_be_visible()


def test_load_more_pages_through_every_post_newest_first(
    browser: Browser, local_stack: LocalStack, screenshots: Path
) -> None:
    # GIVEN more posts than fit on two pages, written outside the page and in the view
    written = {
        call(local_stack, "POST", "/posts", {"title": f"Paged post {index}"})[0]["id"]
        for index in range(2 * PAGE + 1)
    }
    expected: list[str] = []
    deadline = time.monotonic() + 20
    while not written <= set(expected) and time.monotonic() < deadline:
        time.sleep(0.2)
        expected = every_post_id(local_stack)
    assert written <= set(expected)
    with opened_at(browser, local_stack, screenshots, f"/?limit={PAGE}") as paged:
        page = paged.page
        posts = page.locator("#posts > .post")
        more = page.locator("#load-more")
        # THEN the page shows one page of the newest posts, and a Load more button
        expect(posts).to_have_count(PAGE)
        expect(more).to_be_visible()
        # WHEN Load more is clicked until it goes away
        for shown in range(2 * PAGE, len(expected) + PAGE, PAGE):
            more.click()
            expect(posts).to_have_count(min(shown, len(expected)))
        expect(more).to_be_hidden()
        # THEN every post is shown once, newest first, and stays through the polls
        ids = [posts.nth(i).get_attribute("data-post-id") for i in range(posts.count())]
        assert ids == expected
        page.wait_for_timeout(2500)
        expect(posts).to_have_count(len(expected))
        paged.shot("load-more")
