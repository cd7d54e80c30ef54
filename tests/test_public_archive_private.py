"""A private list's web version in-process (httpx ASGITransport) on both databases: the email's "View in browser"
link is signed for the list and the date, opens the edition without anything personal, and nothing else of the
archive shows; a tampered token is a 404.

Every article and address here is fictional.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any, cast

import pytest
from bs4 import BeautifulSoup

from digest.web.public import create_app

from .audience_support import Web
from .conftest import Project
from .send_support import DAY, add_articles, add_subscribers
from .send_support import send_on_day as _send

BASE = "https://news.example.org"


def sent_titles(project: Project, edition_id: int) -> list[str]:
    shown = project.json("editions", "show", str(edition_id))
    return [a["title"] for a in shown["articles"] if a["delivered"]]


def sent_messages(project: Project) -> list[EmailMessage]:
    return [cast(EmailMessage, message_from_bytes(p.read_bytes(), policy=default_policy))
            for p in sorted((project.root / "outbox").glob("*.eml"))]


@pytest.fixture
def private(project: Project) -> Iterator[tuple[Project, Web]]:
    project.write_config(f'outbox_dir = "outbox"\nbase_url = "{BASE}"\n')
    app = project.app()
    add_subscribers(app, 2)
    project.run("lists", "set", "daily", "--archive", "private")
    add_articles(app, 3)
    assert _send(app).sent == 2
    web = Web(create_app(app))
    yield project, web
    web.close()
    app.close()


def href(soup: BeautifulSoup, text: str) -> str:
    link = soup.find("a", string=text)
    assert link is not None, text
    return str(link["href"])


def web_links(project: Project) -> set[str]:
    """Every "view in browser" link the readers got, from the HTML and the text parts."""
    links: set[str] = set()
    for message in sent_messages(project):
        html = message.get_body(("html",))
        text = message.get_body(("plain",))
        assert html is not None and text is not None
        soup = BeautifulSoup(html.get_content(), "lxml")
        links.add(href(soup, "View in browser"))
        links.add(href(soup, "Read it in your browser"))
        links.update(w for w in text.get_content().split() if w.startswith(f"{BASE}/archive/"))
    return links


def test_the_emails_link_opens_the_edition_without_anything_personal(private: Any) -> None:
    project, web = private
    links = web_links(project)
    # One link for every reader: it carries the list and date, nobody's identity, so a forwarded copy works too.
    assert len(links) == 1
    link = links.pop()
    prefix = f"{BASE}/archive/daily/{DAY.isoformat()}/"
    assert link.startswith(prefix) and len(link) > len(prefix)
    page = web.get(link.removeprefix(BASE))
    assert page.status_code == 200
    html = page.text
    soup = BeautifulSoup(html, "lxml")
    assert [h.get_text(strip=True) for h in soup.select("h2.headline")] == sent_titles(project, 1)
    assert "/unsubscribe/" not in html and "/preferences/" not in html and "{{digest:" not in html
    assert "reader0@example.com" not in html and "reader1@example.com" not in html
    assert soup.find("a", string="View in browser") is None  # the page itself
    # The banner keeps the subscribe link but not the archive's, which answers 404 for this list.
    assert soup.find("a", string="All editions") is None
    assert href(soup, "Subscribe") == f"{BASE}/subscribe/daily"
    # Only the token guards the page: no shared cache, no index, no Referer to the sites articles link to.
    assert page.headers["cache-control"].startswith("private")
    assert page.headers["referrer-policy"] == "no-referrer" and "noindex" in page.headers["x-robots-tag"]


def test_a_tampered_or_misplaced_token_and_the_rest_of_the_archive_are_404(private: Any) -> None:
    project, web = private
    link = web_links(project).pop().removeprefix(BASE)
    token = link.rsplit("/", 1)[1]
    # A signature's first character (its last one may only hold base64 padding bits, which decoding ignores).
    payload, signature = token.rsplit(".", 1)
    flipped = f"{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    list_id, day = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    other_list = base64.urlsafe_b64encode(json.dumps([list_id + 1, day], separators=(",", ":")).encode()).decode()
    other_day = DAY.replace(day=DAY.day + 1).isoformat()
    for path in (f"/archive/daily/{DAY.isoformat()}/{flipped}",  # altered signature
                 f"/archive/daily/{DAY.isoformat()}/x{token}",
                 f"/archive/daily/{DAY.isoformat()}/{other_list.rstrip('=')}.{signature}",  # another list id, old signature
                 f"/archive/daily/{DAY.isoformat()}/not-a-token",
                 f"/archive/daily/{other_day}/{token}",  # signed for another date
                 f"/archive/other/{DAY.isoformat()}/{token}",  # and another list
                 "/archive/daily", f"/archive/daily/{DAY.isoformat()}", "/archive/daily/feed.xml"):
        assert web.get(path).status_code == 404, path
    assert web.get(link).status_code == 200


def test_the_link_keeps_working_after_the_list_goes_public(private: Any) -> None:
    project, web = private
    link = web_links(project).pop().removeprefix(BASE)
    project.run("lists", "set", "daily", "--archive", "public")
    assert web.get(link).status_code == 200
    public = web.get(f"/archive/daily/{DAY.isoformat()}")
    assert public.status_code == 200 and public.headers["cache-control"].startswith("public")
    assert web.get("/archive/daily").status_code == 200


def test_the_access_log_holds_no_working_web_version_link() -> None:
    import logging

    from digest.web.public import TokenMaskFilter

    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/archive/daily/2024-05-06/WzcsIjIwMjQiXQ.sig", "1.1", 200),
                               None)
    TokenMaskFilter().filter(record)
    assert isinstance(record.args, tuple) and record.args[2] == "/archive/daily/2024-05-06/…"
    public = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, "%s", ("/archive/daily/2024-05-06",), None)
    TokenMaskFilter().filter(public)
    assert isinstance(public.args, tuple) and public.args[0] == "/archive/daily/2024-05-06"
