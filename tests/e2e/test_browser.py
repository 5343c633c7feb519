"""The web page, in a real browser, on the `make dev` stack.

Playwright for Python drives Debian's Chromium (``apt-get install chromium``; nothing here
downloads a browser) in headless mode against the page that ``chalice local`` serves at ``GET /``
on the stack started by the ``local_stack`` fixture (``tests/e2e/conftest.py``). Every step
waits on what the page shows, never on a fixed sleep. Screenshots go into a folder whose path
the run prints.

Outside CI the tests are skipped when ``/usr/bin/chromium`` is missing; in CI (``CI=true``)
they must run, and fail without it (``.ci/run`` installs it).
"""

import contextlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    Dialog,
    Locator,
    Page,
    Request,
    Response,
    Route,
    expect,
    sync_playwright,
)

from tests.e2e.conftest import LocalStack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
WAIT_MS = 20_000
"""The longest wait for something to show (moderation and recovery are asynchronous)."""
XSS = "<img src=x onerror=alert(1)>"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and os.environ.get("CI") != "true",
    reason=f"no Chromium at {CHROMIUM}: `apt-get install chromium` to run the browser tests",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), f"CI needs Chromium at {CHROMIUM}: .ci/run installs it"
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    folder = tmp_path_factory.mktemp("browser-screenshots")
    # Straight to the terminal, past pytest's capture, as capsys.disabled() does.
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\nbrowser screenshots: {folder}", flush=True)
    return folder


@dataclass
class Blog:
    """The page, with what it did that no assertion on the DOM would see."""

    page: Page
    shots: Path
    dialogs: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=self.shots / f"{name}.png", full_page=True)

    def post(self, title: str) -> Locator:
        heading = self.page.get_by_role("heading", name=title, exact=True)
        return self.page.locator(".post").filter(has=heading)

    def publish(self, title: str) -> Locator:
        self.page.fill("#new-post-title", title)
        self.page.click("#new-post button[type=submit]")
        post = self.post(title)
        expect(post).to_be_visible()
        expect(self.page.locator("#new-post-title")).to_have_value("")
        return post

    def comment(self, post: Locator, content: str) -> None:
        count = post.locator(".comment").count()
        post.locator("input[name=content]").fill(content)
        post.locator(".new-comment button").click()
        expect(post.locator(".comment")).to_have_count(count + 1)


def _no_ops_routes(route: Route) -> None:
    """What API Gateway answers for a route a deployed stage does not have."""
    route.fulfill(
        status=403,
        content_type="application/json",
        body='{"message": "Missing Authentication Token"}',
    )


@contextlib.contextmanager
def opened(
    browser: Browser, stack: LocalStack, shots: Path, *, deployed: bool = False
) -> Iterator[Blog]:
    """The page in a fresh browser context; ``deployed``: as if the stage had no /ops routes.

    On leaving, the page stops making requests and those under way finish before the context
    closes: a request cut off mid-answer would make ``chalice local`` log a broken pipe.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    blog = Blog(page, shots)
    in_flight: set[Request] = set()

    def on_dialog(dialog: Dialog) -> None:
        blog.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: blog.page_errors.append(str(error)))
    page.on("request", lambda request: in_flight.add(request))
    page.on("requestfinished", lambda request: in_flight.discard(request))
    page.on("requestfailed", lambda request: in_flight.discard(request))
    if deployed:
        page.route("**/ops/**", _no_ops_routes)
    try:
        page.goto(stack.url + "/")
        expect(page.locator("#updated")).to_contain_text("updated")
        yield blog
    finally:
        page.route("**/*", lambda route: route.abort())  # no new request reaches the server
        deadline = time.monotonic() + 10
        while in_flight and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        context.close()
    assert blog.dialogs == [], "user content ran as script"
    assert blog.page_errors == []


@pytest.fixture
def blog(browser: Browser, local_stack: LocalStack, screenshots: Path) -> Iterator[Blog]:
    with opened(browser, local_stack, screenshots) as page:
        yield page


def comment_texts(post: Locator, status: str) -> Locator:
    return post.locator(f".comment.{status} .text")


@pytest.mark.parametrize("mode", ["pause", "unsubscribe", "purge"])
def test_the_seed_scenario_through_a_query_outage(blog: Blog, mode: str) -> None:
    page = blog.page
    expect(page.locator("#ops")).to_be_visible()
    # GIVEN a post with an approved comment, a rejected one ('orange') and markup as a comment
    first = blog.publish(f"First post ({mode})")
    blog.comment(first, "Lovely weather")
    blog.comment(first, "I love orange")
    blog.comment(first, XSS)
    expect(comment_texts(first, "approved")).to_have_text(["Lovely weather", XSS])
    expect(comment_texts(first, "rejected")).to_have_text(["rejected"])
    expect(first.locator(".badge.unviewed:visible")).to_have_count(0)
    expect(page.locator("#posts img")).to_have_count(0)  # the markup is text, not an element
    assert blog.dialogs == []  # and its onerror never ran
    blog.shot(f"{mode}-1-seed")

    # WHEN the query consumer goes down, and a post and a comment are written meanwhile
    page.select_option("#outage-mode", mode)
    page.click("#outage-start")
    expect(page.locator("#outage-state")).to_contain_text("query is down")
    expect(page.locator("#outage-result")).to_contain_text(f"Outage started ({mode})")
    query = page.locator("#consumers tr[data-consumer=query]")
    if mode == "unsubscribe":
        expect(query.locator("td").nth(1)).to_have_text("NO")
    else:
        expect(query.locator("td").nth(2)).to_have_text("YES")
    second = blog.publish(f"Second post ({mode})")
    expect(second).to_have_class(re.compile(r"\bunviewed\b"))  # written, not in the view
    blog.comment(second, "Written during the outage")
    if mode != "unsubscribe":  # the events wait in the paused consumer's queue
        expect(query.locator("td").nth(3)).not_to_have_text("0")
    blog.shot(f"{mode}-2-during-outage")

    # THEN ending the outage recovers both from the archive, and everything shows
    page.click("#outage-end")
    result = page.locator("#outage-result")
    expect(result).to_contain_text("Outage ended")
    recovered = re.search(r"(\d+) recovered", result.inner_text())
    assert recovered is not None
    assert int(recovered.group(1)) >= 2  # at least the post and its comment
    expect(page.locator("#outage-state")).to_have_text("query is live")
    expect(second).not_to_have_class(re.compile(r"\bunviewed\b"))
    expect(comment_texts(second, "approved")).to_have_text(["Written during the outage"])
    expect(page.locator(".badge.unviewed:visible")).to_have_count(0)
    expect(comment_texts(first, "approved")).to_have_text(["Lovely weather", XSS])
    expect(comment_texts(first, "rejected")).to_have_text(["rejected"])
    blog.shot(f"{mode}-3-recovered")


def test_a_rebuild_shows_its_progress_and_keeps_every_post(blog: Blog) -> None:
    page = blog.page
    post = blog.publish("Before the rebuild")
    blog.comment(post, "Still here after it")
    expect(comment_texts(post, "approved")).to_have_text(["Still here after it"])
    page.click("#rebuild")
    expect(page.locator("#rebuild-result")).to_contain_text("Rebuilt")
    bar = page.locator("#rebuild-progress")
    expect(bar).to_have_js_property("position", 1)  # a determinate bar, full
    expect(comment_texts(post, "approved")).to_have_text(["Still here after it"])
    expect(page.locator("#errors .error")).to_have_count(0)
    blog.shot("rebuild")


def test_api_errors_are_shown_to_the_user(blog: Blog) -> None:
    page = blog.page
    page.fill("#new-post-title", "   ")  # the browser lets it through; the API refuses it
    page.click("#new-post button[type=submit]")
    banner = page.locator("#errors .error")
    expect(banner).to_contain_text("Could not publish the post: title:")
    blog.shot("error")
    banner.get_by_role("button", name="Dismiss").click()
    expect(banner).to_have_count(0)


def test_without_ops_endpoints_the_panel_is_hidden(
    browser: Browser, local_stack: LocalStack, screenshots: Path
) -> None:
    """A deployed stage has no /ops routes (API Gateway answers 403): the page hides the panel."""
    with opened(browser, local_stack, screenshots, deployed=True) as blog:
        page = blog.page
        expect(page.locator("#ops")).to_be_hidden()
        expect(page.locator("#errors .error")).to_have_count(0)
        blog.publish("No panel here")
        blog.shot("deployed-no-ops-panel")


def test_an_own_pending_comment_shows_what_was_sent_until_it_is_moderated(blog: Blog) -> None:
    """The API serves a comment's text only once approved; its author's page shows it from what
    it sent, marked as awaiting moderation."""
    page = blog.page
    post = blog.publish("Waiting for moderation")
    # GIVEN moderation paused, so the comment stays pending
    page.select_option("#outage-consumer", "moderation")
    page.select_option("#outage-mode", "pause")
    page.click("#outage-start")
    expect(page.locator("#outage-state")).to_contain_text("moderation is down")
    # WHEN a comment is sent
    blog.comment(post, "Still deciding")
    # THEN it shows what was sent, awaiting moderation, while the view has it as pending
    own = post.locator(".comment.pending.own")
    expect(own.locator(".text")).to_have_text("Still deciding")
    expect(own.locator(".badge.awaiting")).to_be_visible()
    expect(post.locator(".badge.unviewed:visible")).to_have_count(0)  # the view has it
    blog.shot("own-pending")
    # AND once moderation runs, the approved text comes from the view
    page.click("#outage-end")
    expect(page.locator("#outage-state")).to_have_text("moderation is live")
    expect(comment_texts(post, "approved")).to_have_text(["Still deciding"])
    expect(post.locator(".badge.awaiting:visible")).to_have_count(0)


def set_hidden(page: Page, hidden: bool) -> None:
    """What the browser does when a tab goes to the background (or comes back)."""
    page.evaluate(
        """(hidden) => {
            const value = (v) => ({ value: v, configurable: true });
            Object.defineProperty(document, "hidden", value(hidden));
            const state = hidden ? "hidden" : "visible";
            Object.defineProperty(document, "visibilityState", value(state));
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        hidden,
    )


def test_polls_ask_if_none_match_and_back_off_while_hidden(blog: Blog) -> None:
    page = blog.page
    polls: list[tuple[float, str | None]] = []
    not_modified: list[int] = []

    def seen(request: Request) -> None:
        if re.search(r"/posts(\?|$)", request.url) and request.method == "GET":
            polls.append((time.monotonic(), request.headers.get("if-none-match")))

    def answered(response: Response) -> None:
        if response.status == 304 and "/posts" in response.url:
            not_modified.append(response.status)

    page.on("request", seen)
    page.on("response", answered)
    # WHEN the page polls an unchanged blog
    page.wait_for_event("response", lambda r: r.status == 304 and "/posts" in r.url)
    # THEN it sends the ETag it has, and the server answers 304
    assert any(tag for _, tag in polls)
    assert not_modified
    # WHEN the page is hidden (as the browser does for a background tab)
    set_hidden(page, True)
    hidden_from = len(polls)
    # THEN the gaps between polls grow: at least 2 s, then at least 4 s (timers never fire early)
    deadline = time.monotonic() + 60
    while len(polls) < hidden_from + 3:
        assert time.monotonic() < deadline, "the hidden page stopped polling"
        page.wait_for_timeout(200)
    times = [t for t, _ in polls[hidden_from:]]
    assert times[1] - times[0] >= 1.9
    assert times[2] - times[1] >= 3.9
    # AND shown again, it polls at once rather than after its back-off
    count = len(polls)
    with page.expect_request(lambda r: re.search(r"/posts(\?|$)", r.url) is not None):
        set_hidden(page, False)
    assert len(polls) > count


def test_a_signed_comment_shows_its_author_as_text(blog: Blog) -> None:
    # GIVEN a post, a comment signed with a name (blanks around it, markup in it) and one not
    post = blog.publish("Signed comments")
    post.locator("input[name=author]").fill("  Ada <b>L</b> ")
    blog.comment(post, "Lovely weather")
    post.locator("input[name=author]").fill("")
    blog.comment(post, "Fine weather")
    # THEN once moderated and in the view, the first shows its author, stripped, as text
    expect(comment_texts(post, "approved")).to_have_text(["Lovely weather", "Fine weather"])
    expect(post.locator(".comment .author:visible")).to_have_text(["Ada <b>L</b>:"])
    expect(post.locator(".comment .author b")).to_have_count(0)
    expect(post.locator(".badge.unviewed:visible")).to_have_count(0)
