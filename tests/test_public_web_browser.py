"""The public pages in real Chromium, over a real uvicorn server on 127.0.0.1: a person subscribes through the form
(CSRF cookie, Content-Security-Policy and all), confirms, opens the preference centre and unsubscribes with the
page's button; every page fits a phone screen, hides the honeypot, and has no serious axe-core violations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from digest.app import App
from digest.audience import tokens
from digest.web.public import create_app
from tests.conftest import REPO, Project, require
from tests.conftest import require_tool as _require_tool

from .audience_support import confirm_links, loopback_socket, serve_on_loopback

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def site(sqlite_project: Project) -> Iterator[tuple[Project, App, str]]:
    sock = loopback_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sqlite_project.write_config(f'outbox_dir = "outbox"\nbase_url = "{base}"\n'
                                'postal_address = "Fictional Newsroom, 1 Sample Street"\n')
    sqlite_project.run("lists", "create", "daily", "--topics", "politics,sports", "--title", "The Daily Test")
    app = sqlite_project.app()
    try:
        with serve_on_loopback(create_app(app), sock):
            yield sqlite_project, app, base
    finally:
        app.close()


@pytest.fixture
def page(site: tuple[Project, App, str]) -> Iterator[Any]:
    _require_tool("chromium", CHROMIUM)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        # bypass_csp only so the test can inject axe-core; the pages' own behaviour runs under their CSP.
        context = browser.new_context(viewport={"width": 375, "height": 800}, bypass_csp=True)
        yield context.new_page()
        context.close()
        browser.close()


def check_page(page: Any) -> None:
    """Fits 375 px without sideways scrolling, and axe-core finds nothing serious."""
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll <= inner, f"{page.url}: {scroll}px of content in a {inner}px viewport"
    require(AXE.is_file(), "axe-core (npm ci)")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"][:3]]) for v in result["violations"]
           if v["impact"] in {"serious", "critical"}]
    assert bad == [], (page.url, bad)


def test_subscribe_confirm_preferences_and_unsubscribe_in_a_browser(site: tuple[Project, App, str],
                                                                     page: Any) -> None:
    project, app, base = site
    page.goto(f"{base}/subscribe")
    assert page.title() == "Subscribe to The Daily Test"
    check_page(page)
    honeypot = page.locator("#website").bounding_box()
    assert honeypot is None or honeypot["x"] + honeypot["width"] <= 0  # off screen: people never see it
    page.fill("#email", "Reader@Example.org")
    page.fill("#name", "Pat Reader")
    page.check("input[name=topics][value=sports]")
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Check your inbox')")
    check_page(page)

    (to, link), = confirm_links(project.root)
    assert to == "Pat Reader <Reader@example.org>" and link.startswith(base + "/confirm/")
    page.goto(link)
    assert project.json("subscribers", "show", "reader@example.org")["status"] == "pending"  # a GET confirms nothing
    check_page(page)
    page.click("text=Confirm my subscription")
    page.wait_for_selector("h1:has-text('You are subscribed')")
    shown = project.json("subscribers", "show", "reader@example.org")
    assert (shown["status"], shown["topics"]) == ("active", ["sports"])

    page.goto(tokens.preferences_url(app.settings, shown["id"], app_list_id(project), shown["email"]))
    assert page.is_checked("input[name=topics][value=sports]")
    check_page(page)
    page.check("input[name=topics][value=politics]")
    page.fill("#timezone", "Europe/Lisbon")
    page.click("text=Save preferences")
    page.wait_for_selector("text=Your preferences are saved.")
    shown = project.json("subscribers", "show", "reader@example.org")
    assert (shown["topics"], shown["timezone"]) == (["politics", "sports"], "Europe/Lisbon")

    page.goto(tokens.unsubscribe_url(app.settings, shown["id"], app_list_id(project), shown["email"]))
    check_page(page)
    assert project.json("subscribers", "show", "reader@example.org")["status"] == "active"  # nor does this GET
    page.click("button:has-text('Unsubscribe')")
    page.wait_for_selector("h1:has-text('You are unsubscribed')")
    check_page(page)
    history = project.json("subscribers", "show", "reader@example.org")["history"]
    assert [(h["new_status"], h["actor"]) for h in history] == [
        ("pending", "web:subscribe"), ("active", "web:confirm"), ("unsubscribed", "web:unsubscribe-page")]


def test_a_bad_link_shows_an_error_page_that_fits(site: tuple[Project, App, str], page: Any) -> None:
    _project, _app, base = site
    response = page.goto(f"{base}/unsubscribe/not-a-token")
    assert response is not None and response.status == 400
    assert page.inner_text("h1") == "This link is not valid"
    assert "Nothing was changed." in page.inner_text("main")
    check_page(page)


def app_list_id(project: Project) -> int:
    return int(project.json("lists", "show", "daily")["id"])
