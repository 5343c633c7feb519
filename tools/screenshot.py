"""Regenerate docs/screenshot.png: the page, during a query outage, with its operations panel.

``.venv/bin/python -m tools.screenshot [--output docs/screenshot.png]``. It starts the local
stack (``python -m emulator dev``) on free loopback ports, drives the page in headless Chromium
(Debian's ``/usr/bin/chromium``, as the browser tests do) at ``/?limit=3``: four posts and
their comments written through the API (one comment rejected by moderation), so **Load more**
shows; once every consumer's scheduled catch-up has folded its watermark up to the archive
head (up to a minute), a query outage started from the panel, and a post and a comment written
on the page during it (marked "not in the view yet"). Then it saves the full page and stops the
stack with Ctrl+C.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect, sync_playwright

from emulator.local import start_dev_stack, stop_process_group, wait_for_http
from emulator.template import ROOT
from tools.api_client import HttpApi

CHROMIUM = Path("/usr/bin/chromium")
STARTUP_SECONDS = 300
WAIT_MS = 60_000
CATCH_UP_MS = 180_000


@contextmanager
def local_stack() -> Iterator[str]:
    """``python -m emulator dev`` on free ports; its URL. Ctrl+C on leaving."""
    dev = start_dev_stack()
    stack, url = dev.process, dev.url
    try:
        try:
            wait_for_http(f"{url}/posts", timeout=STARTUP_SECONDS, process=stack)
        except (RuntimeError, TimeoutError) as error:
            raise SystemExit(f"the local stack did not start: {error}") from error
        yield url
    finally:
        stop_process_group(stack, signal.SIGINT, wait=60)  # Ctrl+C, as a user stops it


def api(url: str, path: str, body: dict[str, str]) -> Any:
    """A POST outside the page (the page marks what it wrote itself until it is on a page)."""
    status, answer = HttpApi(url, timeout=30).post(path, body)
    if status != 201:
        raise RuntimeError(f"POST {path} answered {status}: {answer}")
    return answer


def seed(url: str) -> None:
    """Four posts, older first, and comments, one of which moderation rejects."""
    ids = {}
    for title in ("Welcome to the blog", "Paging through posts", "First post"):
        ids[title] = api(url, "/posts", {"title": title})["id"]
    api(url, f"/posts/{ids['First post']}/comments", {"content": "Lovely weather"})
    api(url, f"/posts/{ids['First post']}/comments", {"content": "I love orange"})
    comment = {"content": "Older posts are one Load more away"}
    api(url, f"/posts/{ids['Paging through posts']}/comments", comment)
    api(url, "/posts", {"title": "The newest post"})


def publish(page: Page, title: str) -> None:
    page.fill("#new-post-title", title)
    page.click("#new-post button[type=submit]")
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()


def comment(page: Page, title: str, content: str) -> None:
    heading = page.get_by_role("heading", name=title, exact=True)
    post = page.locator(".post").filter(has=heading)
    count = post.locator(".comment").count()
    post.locator("input[name=content]").fill(content)
    post.locator(".new-comment button").click()
    expect(post.locator(".comment")).to_have_count(count + 1)


def stage(page: Page) -> None:
    """Moderation done and caught up, then a query outage and what was written during it."""
    expect(page.locator(".comment.rejected")).to_have_count(1)
    expect(page.locator(".comment.pending")).to_have_count(0)
    expect(page.locator("#load-more")).to_be_visible()  # four posts, pages of three
    # the scheduled catch-up (every minute) folds the live path's marks into each watermark
    for consumer in ("moderation", "comments", "query"):
        lag = page.locator(f"#consumers tr[data-consumer={consumer}] td").nth(6)
        expect(lag).to_have_text("0", timeout=CATCH_UP_MS)
    page.select_option("#outage-consumer", "query")
    page.select_option("#outage-mode", "pause")
    page.click("#outage-start")
    expect(page.locator("#outage-state")).to_contain_text("query is down")
    publish(page, "Written during the query outage")
    comment(page, "First post", "Fine, thanks")
    expect(page.get_by_text("not in the view yet").first).to_be_visible()
    page.wait_for_timeout(3_000)  # a few polls: the panel shows the query's lag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "screenshot.png")
    arguments = parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit(f"no Chromium at {CHROMIUM}: `apt-get install chromium`")
    expect.set_options(timeout=WAIT_MS)
    with local_stack() as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            seed(url)
            page.goto(f"{url}/?limit=3")
            expect(page.locator("#updated")).to_contain_text("updated")
            stage(page)
            page.screenshot(path=arguments.output, full_page=True)
            page.route("**/*", lambda route: route.abort())  # no request left mid-answer
            page.wait_for_timeout(500)
            context.close()
        finally:
            browser.close()
    print(f"wrote {arguments.output}")


if __name__ == "__main__":
    main()
