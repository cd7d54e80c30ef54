"""The public archive in-process (httpx ASGITransport) on both databases: the archive page, an edition's web
version without personal links, the Atom feed (feedparser and the Atom rules), and private lists (404)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import feedparser
import pytest
from bs4 import BeautifulSoup

from digest.web.public import create_app

from .audience_support import Web
from .conftest import Project
from .send_support import DAY, NOW, add_articles, add_subscribers
from .send_support import send_on_day as _send

BASE = "https://news.example.org"
ATOM = "{http://www.w3.org/2005/Atom}"
NOTE = "Good morning: the *ferry* story is today's lead."


def sent_titles(project: Project, edition_id: int) -> list[str]:
    shown = project.json("editions", "show", str(edition_id))
    titles = [a["title"] for a in shown["articles"] if a["delivered"]]
    assert titles
    return titles


@pytest.fixture
def archive(project: Project) -> Iterator[tuple[Project, Any, Web]]:
    project.write_config(f'outbox_dir = "outbox"\nbase_url = "{BASE}"\n')
    app = project.app()
    add_articles(app, 3)
    add_subscribers(app, 2)
    project.run("editions", "note", "--date", DAY.isoformat(), NOTE)
    assert _send(app).sent == 2
    later = NOW + timedelta(days=1)
    add_articles(app, 2, before=later, prefix="next")
    assert _send(app, date=DAY + timedelta(days=1), now=later).sent == 2
    # An edition planned but never sent is no part of the archive.
    project.run("editions", "note", "--date", (DAY + timedelta(days=2)).isoformat(), "Not yet")
    web = Web(create_app(app))
    yield project, app, web
    web.close()
    app.close()


def test_archive_page_lists_sent_editions_newest_first_and_announces_its_feed(archive: Any) -> None:
    project, _, web = archive
    page = web.get("/archive/daily")
    assert page.status_code == 200
    soup = BeautifulSoup(page.text, "lxml")
    alternate = soup.find("link", rel="alternate")
    assert alternate["type"] == "application/atom+xml" and alternate["href"] == f"{BASE}/archive/daily/feed.xml"
    links = [a["href"] for a in soup.select("ol.editions h2 a")]
    assert links == ["/archive/daily/2024-05-07", "/archive/daily/2024-05-06"]
    first = soup.select("ol.editions > li")[1]
    assert first.select_one("time")["datetime"] == "2024-05-06"
    assert [li.get_text() for li in first.select("ul li")] == sent_titles(project, 1)[:3]
    # The subject as sent (the default: the top story's headline).
    assert first.select_one("h2 a").get_text() == "Fictional story number 0 about the town council"


def test_web_version_is_the_edition_without_personal_links(archive: Any) -> None:
    project, _, web = archive
    page = web.get("/archive/daily/2024-05-06")
    assert page.status_code == 200
    html = page.text
    soup = BeautifulSoup(html, "lxml")
    assert [h.get_text(strip=True) for h in soup.select("h2.headline")] == sent_titles(project, 1)
    assert soup.select_one("div.note").get_text(" ", strip=True) == "Good morning: the ferry story is today's lead."
    assert "/unsubscribe/" not in html and "/preferences/" not in html and "{{digest:" not in html
    assert "reader0@example.com" not in html and "Reader 0" not in html
    assert soup.find("a", string="View in browser") is None  # the page itself
    # The line on top links the archive and the subscribe page, inside the body (not escaped into it).
    banner = soup.body.find("div", recursive=False)
    assert banner is not None and "web-banner" in banner["class"] and "&lt;body" not in html
    assert {a.get_text(): a["href"] for a in banner.find_all("a")} == {
        "All editions": f"{BASE}/archive/daily", "Subscribe": f"{BASE}/subscribe/daily"}
    assert soup.find("a", string=re.compile("^Subscribe to "))["href"] == f"{BASE}/subscribe/daily"
    # Article links as sent, with their UTM parameters.
    assert soup.select_one("h2.headline a")["href"].startswith("https://news.example.org/art-0?utm_campaign=")
    # What the readers got links here.
    sent = (project.root / "outbox")
    assert any(f"{BASE}/archive/daily/2024-05-06" in p.read_text(errors="replace") for p in sent.glob("*.eml"))
    for missing in ("/archive/daily/2024-05-08", "/archive/daily/2024-13-01", "/archive/daily/yesterday",
                    "/archive/nope", "/archive/nope/2024-05-06", "/archive/nope/feed.xml"):
        assert web.get(missing).status_code == 404, missing


def test_atom_feed_parses_and_follows_the_atom_rules(archive: Any) -> None:
    _, _, web = archive
    answer = web.get("/archive/daily/feed.xml")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(answer.content)
    assert parsed.bozo == 0 and parsed.version == "atom10"
    assert [e.link for e in parsed.entries] == [f"{BASE}/archive/daily/2024-05-07", f"{BASE}/archive/daily/2024-05-06"]
    assert "Good morning" in parsed.entries[1].content[0].value
    # RFC 4287: the feed has id, title, updated, an author (its entries have none) and a self link; each entry an
    # id (unique), a title, an updated timestamp (RFC 3339, with zone) and an alternate link.
    root = ET.fromstring(answer.content)
    assert root.tag == f"{ATOM}feed"

    def one(node: ET.Element, tag: str) -> ET.Element:
        found = node.findall(f"{ATOM}{tag}")
        assert len(found) == 1, tag
        return found[0]

    for tag in ("id", "title", "updated"):
        assert (one(root, tag).text or "").strip()
    assert (one(one(root, "author"), "name").text or "").strip()
    rels = {link.get("rel"): link.get("href") for link in root.findall(f"{ATOM}link")}
    assert rels["self"] == f"{BASE}/archive/daily/feed.xml"
    entries = root.findall(f"{ATOM}entry")
    assert len(entries) == 2
    ids = [one(e, "id").text for e in entries]
    assert len(set(ids)) == 2
    for entry in entries:
        assert (one(entry, "title").text or "").strip()
        assert datetime.fromisoformat(one(entry, "updated").text or "").tzinfo is not None
        assert [link.get("rel") for link in entry.findall(f"{ATOM}link")] == ["alternate"]
    assert datetime.fromisoformat(one(root, "updated").text or "") >= max(
        datetime.fromisoformat(one(e, "updated").text or "") for e in entries)


def test_a_private_archive_answers_404(archive: Any) -> None:
    project, _, web = archive
    shown = project.json("lists", "set", "daily", "--archive", "private")
    assert shown["archive"] == "private"
    assert project.json("lists", "show", "daily")["archive"] == "private"
    for path in ("/archive/daily", "/archive/daily/2024-05-06", "/archive/daily/feed.xml"):
        assert web.get(path).status_code == 404, path
    project.run("lists", "set", "daily", "--archive", "public")
    assert web.get("/archive/daily").status_code == 200
    assert project.run("lists", "set", "daily", "--archive", "secret", ok=False).exit_code == 2
