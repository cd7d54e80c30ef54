"""The preview app in-process (httpx over ASGI), on SQLite and PostgreSQL: pages, views, checks, send test.

Every article, subscriber and address here is fictional.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from digest import editions as pipeline
from digest.app import App
from digest.audience.lifecycle import email_key
from digest.audience.lists import ensure_list
from digest.audience.tokens import read_token
from digest.editions import upcoming_date
from digest.models import Article
from digest.render.templates import PACKAGE_TEMPLATES
from digest.store.articles import upsert_article
from digest.store.tables import DeliveryRow, EditionRow, SubscriberRow
from digest.web.preview import create_preview_app
from digest.web.preview_checks import SpamChecker
from tests.conftest import Project

HOST = "127.0.0.1:8030"

# Distinct vocabularies so ranking's duplicate detection keeps every story.
STORIES = [
    ("p1", "Council approves harbour bridge budget", ["politics"],
     "The city council voted to fund repairs of the old harbour bridge after a long debate."),
    ("p2", "Senate committee questions water agency", ["politics"],
     "Members pressed the agency director about delayed pipeline inspections across the valley."),
    ("s1", "Rovers clinch late derby victory", ["sports"],
     "A stoppage-time header gave the Rovers their first derby win in three seasons."),
    ("s2", "Marathon route changes announced", ["sports"],
     "Organisers moved the autumn marathon start line to avoid roadworks near the station."),
    ("c1", "Museum reopens renovated gallery", ["culture"],
     "Visitors queued early as the east wing opened with restored ceiling paintings."),
]


@dataclass
class Seeded:
    app: App
    day: date
    list_id: int
    past_day: date


def seed(project: Project, *, extra: list[Article] | None = None) -> Seeded:
    """A list with five fictional stories in its upcoming edition's window and one sent past edition."""
    app = project.app()
    with app.store.session() as session:
        list_row = ensure_list(session, app.settings)
        day = upcoming_date(session, app.settings, list_row)
        cutoff = pipeline.cutoff_for(list_row, day)
        for i, (aid, title, topics, summary) in enumerate(STORIES):
            upsert_article(session, Article(
                id=aid, title=title, outlet="Example Gazette", author="Fictional Reporter", topics=topics,
                url=f"https://news.example.org/{aid}", summary=summary, quick_looks=[f"Key point of {aid}"],
                published_at=cutoff - timedelta(hours=i + 1)))
        for article in extra or []:
            upsert_article(session, article)
        past_day = day - timedelta(days=3)
        past = pipeline.get_or_create_edition(session, app.settings, list_row, past_day)
        past.status = "sent"
        list_id = list_row.id
    return Seeded(app, day, list_id, past_day)


def add_subscriber(app: App, list_id: int, email: str, topics: list[str], name: str | None = None) -> int:
    with app.store.session() as session:
        row = SubscriberRow(list_id=list_id, email=email, email_key=email_key(email), name=name, status="active",
                            topics=topics)
        session.add(row)
        session.flush()
        return row.id


class Client:
    """Synchronous calls into the ASGI app through httpx (no server, no lifespan: live reload is off)."""

    def __init__(self, app: App, **options: Any) -> None:
        options.setdefault("spam", SpamChecker(executable=""))
        self.asgi = create_preview_app(app, live=False, **options)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.asgi)
            async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}") as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(go())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)


def base_of(seeded: Seeded) -> str:
    return f"/l/daily/{seeded.day.isoformat()}"


def test_index_opens_on_the_upcoming_edition_and_lists_past_ones(project: Project) -> None:
    seeded = seed(project)
    client = Client(seeded.app)
    page = client.get("/")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert f'data-base="{base_of(seeded)}"' in page.text
    assert f"Upcoming · {seeded.day.isoformat()}" in page.text
    past_link = f'href="/l/daily/{seeded.past_day.isoformat()}"'
    assert past_link in page.text
    assert re.search(re.escape(past_link) + r"[^<]*>" + seeded.past_day.isoformat() + r"</a>\s*<span[^>]*>sent<",
                     page.text)
    assert f'src="{base_of(seeded)}/html?v=0"' in page.text

    listing = client.get("/editions.json").json()
    assert listing == {"lists": [{"name": "daily", "title": None, "upcoming": seeded.day.isoformat(),
                                  "upcoming_status": None,
                                  "past": [{"date": seeded.past_day.isoformat(), "status": "sent"}]}]}
    assert client.get("/l/daily", follow_redirects=False).headers["location"] == base_of(seeded)
    assert client.get("/l/nope").status_code == 404
    assert client.get("/l/daily/not-a-date").status_code == 404


def test_upcoming_moves_to_the_next_day_once_today_went_out(project: Project) -> None:
    seeded = seed(project)
    with seeded.app.store.session() as session:
        list_row = ensure_list(session, seeded.app.settings)
        edition = pipeline.get_or_create_edition(session, seeded.app.settings, list_row, seeded.day)
        edition.status = "sent"
    listing = Client(seeded.app).get("/editions.json").json()["lists"][0]
    assert listing["upcoming"] == (seeded.day + timedelta(days=1)).isoformat()
    assert {"date": seeded.day.isoformat(), "status": "sent"} in listing["past"]


def test_html_text_source_and_headers_views(project: Project) -> None:
    seeded = seed(project)
    client = Client(seeded.app)
    base = base_of(seeded)

    html = client.get(base + "/html")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "script-src 'none'" in html.headers["content-security-policy"]
    assert '<base target="_blank">' in html.text
    assert "Council approves harbour bridge budget" in html.text
    assert "{{digest:" not in html.text  # personalized: no placeholder is left

    text = client.get(base + "/text")
    assert text.headers["content-type"].startswith("text/plain")
    assert "Council approves harbour bridge budget" in text.text and "<" not in text.text.split("\n")[0]

    source = client.get(base + "/source")
    message = message_from_bytes(source.text.encode("utf-8"), policy=default_policy)
    assert message.get_content_type() == "multipart/alternative"
    assert message["To"] == "reader@example.org"
    assert str(message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert str(message["List-Unsubscribe"]).startswith("<http://127.0.0.1:8040/unsubscribe/")

    headers = client.get(base + "/headers")
    assert headers.status_code == 200
    cells = dict(re.findall(r'<th scope="row">([^<]+)</th><td><code>([^<]*)</code>', headers.text))
    assert cells["To"] == "reader@example.org"
    assert cells["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Subject" in cells and "Message-ID" in cells and "List-Id" in cells


def test_dark_mode_makes_the_templates_dark_styles_unconditional(project: Project) -> None:
    seeded = seed(project)
    client = Client(seeded.app)
    light = client.get(base_of(seeded) + "/html").text
    dark = client.get(base_of(seeded) + "/html?dark=1").text
    assert "prefers-color-scheme: dark" in light.replace("prefers-color-scheme:dark", "prefers-color-scheme: dark")
    styles = "".join(re.findall(r"<style[^>]*>(.*?)</style>", dark, re.DOTALL))
    assert not re.search(r"prefers-color-scheme\s*:\s*dark", styles)
    assert "(min-width: 0px)" in styles
    assert '<meta name="color-scheme" content="dark">' in dark


def test_view_as_subscriber_uses_their_variant_and_links(project: Project) -> None:
    seeded = seed(project)
    sid = add_subscriber(seeded.app, seeded.list_id, "Sam.Sports@Example.org", ["sports"], name="Sam")
    add_subscriber(seeded.app, seeded.list_id, "pat@example.org", ["culture"])
    client = Client(seeded.app)
    base = base_of(seeded)

    page = client.get(base + "?subscriber=sam.sports@example.org")
    assert page.status_code == 200
    assert '<option value="Sam.Sports@Example.org" selected>' in page.text
    assert "pat@example.org" in page.text

    sample = client.get(base + "/checks.json").json()["edition"]
    theirs = client.get(base + "/checks.json?subscriber=sam.sports@example.org").json()["edition"]
    assert theirs["subscriber_id"] == sid and theirs["to"] == "Sam <Sam.Sports@Example.org>"
    assert theirs["variant"] != sample["variant"]  # sports first for a sports reader

    text = client.get(base + "/text?subscriber=sam.sports@example.org").text
    assert text.index("Rovers clinch late derby victory") < text.index("Council approves harbour bridge budget")
    source = client.get(base + "/source?subscriber=sam.sports@example.org").text
    message = message_from_bytes(source.encode("utf-8"), policy=default_policy)
    url = str(message["List-Unsubscribe"]).strip("<>")
    token = read_token(seeded.app.settings, "unsubscribe", url.rsplit("/", 1)[1])
    assert (token.subscriber_id, token.list_id) == (sid, seeded.list_id)

    missing = client.get(base + "/html?subscriber=nobody@example.org")
    assert missing.status_code == 404 and "nobody@example.org" in missing.text


def _template_override(project: Project, name: str, edit: Any) -> Path:
    folder = project.root / "templates"
    if not folder.exists():
        shutil.copytree(PACKAGE_TEMPLATES, folder)
    path = folder / name
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    return path


def test_checks_flag_images_without_alt_and_links_that_are_not_http(project: Project) -> None:
    pictured = Article(id="img1", title="Lighthouse keeper retires after forty years", outlet="Example Gazette",
                       url="javascript:alert(document.cookie)", topics=["culture"],
                       summary="The last keeper of the northern lighthouse handed over the keys on Friday.",
                       image_url="https://img.example.org/lighthouse.jpg")
    seeded = seed(project)
    with seeded.app.store.session() as session:
        list_row = ensure_list(session, seeded.app.settings)
        pictured.published_at = pipeline.cutoff_for(list_row, seeded.day) - timedelta(minutes=30)
        upsert_article(session, pictured)
    client = Client(seeded.app)
    base = base_of(seeded)

    result = client.get(base + "/checks.json").json()
    checks = {c["name"]: c for c in result["checks"]}
    # An article image without alt text of its own gets its headline, so the default templates pass...
    assert checks["images"]["status"] == "ok", checks["images"]
    # The renderer never turns a javascript: URL into a link, so the default templates pass.
    assert checks["links"]["status"] == "ok", checks["links"]
    assert checks["size"]["status"] == "ok" and 0 < checks["size"]["value"] < 102_000
    assert checks["list-unsubscribe"]["status"] == "ok"
    assert checks["spamassassin"]["status"] == "skipped"

    # ...while a newsroom's own template that drops the alt text (here on every card, not only the lead's), or
    # links to a script or a mail address, is caught.
    _template_override(project, "_article.mjml.j2", lambda text: text.replace(
        '<p class="byline">', '<p><a href="javascript:void(0)">Share</a> <a href="mailto:desk@example.org">'
                              'Write to us</a></p>\n          <p class="byline">', 1).replace(
        'alt="{{ article.image_alt }}"', 'alt=""', 1).replace(
        "{% if is_lead and article.image_url", "{% if article.image_url", 1))  # pictures on every card
    checks = {c["name"]: c for c in client.get(base + "/checks.json").json()["checks"]}
    assert checks["images"]["status"] == "fail"
    assert checks["images"]["details"] == ["https://img.example.org/lighthouse.jpg"]
    links = checks["links"]
    assert links["status"] == "fail"
    assert "javascript:void(0)" in links["details"] and "mailto:desk@example.org" in links["details"]

    panel = client.get(base + "/panel")
    assert panel.status_code == 200
    assert 'data-check="images" data-status="fail"' in panel.text
    assert 'data-check="links" data-status="fail"' in panel.text
    assert "https://img.example.org/lighthouse.jpg" in panel.text


def test_checks_run_spamassassin_when_installed(project: Project) -> None:
    from tests.conftest import require_tool

    seeded = seed(project)
    client = Client(seeded.app, spam=SpamChecker(require_tool("spamassassin")))
    spam = {c["name"]: c for c in client.get(base_of(seeded) + "/checks.json").json()["checks"]}["spamassassin"]
    assert spam["status"] in {"ok", "warn", "fail"} and isinstance(spam["value"], float)
    assert spam["value"] <= 2.0, spam  # the default templates must not look like spam


def test_everything_from_articles_is_escaped(project: Project) -> None:
    evil = '<script>alert("x")</script> "quoted" & more'
    seeded = seed(project, extra=[])
    with seeded.app.store.session() as session:
        list_row = ensure_list(session, seeded.app.settings)
        upsert_article(session, Article(
            id="evil", title=evil, outlet="Example Gazette", url="https://news.example.org/evil",
            topics=["politics"], summary="An entirely fictional story about escaping.",
            published_at=pipeline.cutoff_for(list_row, seeded.day) - timedelta(minutes=10)))
    client = Client(seeded.app)
    panel = client.get(base_of(seeded) + "/panel").text
    assert "<script>" not in panel and "&lt;script&gt;" in panel
    html = client.get(base_of(seeded) + "/html").text
    assert '<script>alert("x")</script>' not in html
    headers = client.get(base_of(seeded) + "/headers").text
    assert "<script>" not in headers


def test_a_template_error_names_the_file_and_line(project: Project) -> None:
    seeded = seed(project)
    client = Client(seeded.app)
    _template_override(project, "_footer.mjml.j2", lambda text: text + "\n{% if %}\n")
    page = client.get(base_of(seeded) + "/html")
    assert page.status_code == 500
    assert re.search(r"templates/_footer\.mjml\.j2:\d+", page.text), page.text
    panel = client.get(base_of(seeded) + "/panel").text
    assert 'id="build-error"' in panel and "_footer.mjml.j2" in panel


def test_config_changes_apply_without_a_restart(project: Project) -> None:
    seeded = seed(project)
    client = Client(seeded.app)
    before = client.get(base_of(seeded) + "/checks.json").json()["edition"]["subject"]
    project.write_config('outbox_dir = "outbox"\nsubject_template = "Fictional Morning Brief: {{ top_headline }}"\n')
    after = client.get(base_of(seeded) + "/checks.json").json()["edition"]["subject"]
    assert before != after and after.startswith("Fictional Morning Brief: ")
    # Settings from the environment (database, secret) still win after the re-read.
    assert seeded.app.settings.database_url == project.db_url

    project.write_config("this is = = not toml\n")
    page = client.get(base_of(seeded))
    assert page.status_code == 200 and "digest.toml could not be read" in page.text
    assert client.get(base_of(seeded) + "/checks.json").json()["edition"]["subject"] == after


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "the send-test form carries a CSRF token"
    return match.group(1)


def _outbox(project: Project) -> list[Path]:
    folder = project.root / "outbox"
    return sorted(folder.glob("*.eml")) if folder.exists() else []


def _deliveries(app: App) -> int:
    with app.store.session() as session:
        return int(session.scalar(select(func.count(DeliveryRow.id))) or 0)


def test_send_test_goes_through_the_backend_and_records_no_delivery(project: Project) -> None:
    seeded = seed(project)
    add_subscriber(seeded.app, seeded.list_id, "sam@example.org", ["sports"])
    client = Client(seeded.app)
    base = base_of(seeded)
    token = _csrf(client.get(base).text)
    origin = {"Origin": f"http://{HOST}"}

    sent = client.post(base + "/send-test?subscriber=sam@example.org", data={"to": "editor@example.org",
                                                                            "csrf": token},
                       headers=origin, follow_redirects=False)
    assert sent.status_code == 303
    assert sent.headers["location"].startswith(base + "?")
    assert "sent=editor%40example.org" in sent.headers["location"]
    files = _outbox(project)
    assert len(files) == 1
    message = message_from_bytes(files[0].read_bytes(), policy=default_policy)
    assert message["To"] == "editor@example.org"
    assert str(message["Subject"]).startswith("[Test] ")
    # Sam's variant, but not Sam's unsubscribe link: the test recipient must not be able to unsubscribe Sam.
    token_data = read_token(seeded.app.settings, "unsubscribe",
                            str(message["List-Unsubscribe"]).strip("<>").rsplit("/", 1)[1])
    assert token_data.subscriber_id == 0
    body = message.get_body(("plain",))
    assert body is not None and "Rovers clinch late derby victory" in body.get_content()
    assert _deliveries(seeded.app) == 0
    with seeded.app.store.session() as session:
        assert session.scalar(select(func.count(EditionRow.id))) == 2  # the upcoming draft and the past one

    landing = client.get(sent.headers["location"])
    assert "Test sent to editor@example.org." in landing.text

    as_json = client.post(base + "/send-test", data={"to": "editor@example.org", "csrf": token},
                          headers={**origin, "Accept": "application/json"})
    assert as_json.status_code == 200 and as_json.json()["sent_to"] == "editor@example.org"
    assert len(_outbox(project)) == 2 and _deliveries(seeded.app) == 0


def test_send_test_refuses_forged_or_bad_requests(project: Project) -> None:
    seeded = seed(project)
    client = Client(seeded.app)
    base = base_of(seeded)
    token = _csrf(client.get(base).text)
    origin = {"Origin": f"http://{HOST}"}

    no_token = client.post(base + "/send-test", data={"to": "editor@example.org"}, headers=origin)
    assert no_token.status_code == 403
    forged = client.post(base + "/send-test", data={"to": "editor@example.org", "csrf": token + "x"},
                         headers=origin)
    assert forged.status_code == 403
    cross_site = client.post(base + "/send-test", data={"to": "editor@example.org", "csrf": token},
                             headers={"Origin": "http://evil.example.net"})
    assert cross_site.status_code == 403
    bad_address = client.post(base + "/send-test", data={"to": "not an address", "csrf": token}, headers=origin)
    assert bad_address.status_code == 400 and "to: &#39;not an address&#39;" in bad_address.text
    unknown_list = client.post("/l/nope/2024-01-01/send-test", data={"to": "editor@example.org", "csrf": token},
                               headers=origin)
    assert unknown_list.status_code == 404
    assert _outbox(project) == [] and _deliveries(seeded.app) == 0


def test_static_assets_are_served(sqlite_project: Project) -> None:
    client = Client(sqlite_project.app())
    js = client.get("/static/preview/preview.js")
    assert js.status_code == 200 and "EventSource" in js.text
    assert client.get("/static/preview/preview.css").status_code == 200


def test_only_loopback_host_names_are_answered(sqlite_project: Project) -> None:
    """A site the user visits could point its own name at 127.0.0.1 (DNS rebinding) and read the preview."""
    asgi = create_preview_app(sqlite_project.app(), live=False)

    async def get(host: str) -> int:
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
            return (await client.get("/editions.json")).status_code

    assert asyncio.run(get("127.0.0.1:8030")) == 200
    assert asyncio.run(get("localhost:8030")) == 200
    assert asyncio.run(get("attacker.example.net:8030")) == 400


@pytest.mark.parametrize("path", ["/l/daily/2024-01-01/nope", "/nothing"])
def test_unknown_paths_are_404(sqlite_project: Project, path: str) -> None:
    assert Client(sqlite_project.app()).get(path).status_code == 404


def test_web_version_and_archive_views_show_what_serve_would(project: Project) -> None:
    seeded = seed(project)
    project.run("editions", "note", "--date", seeded.day.isoformat(), "An editor's *word* first.")
    client = Client(seeded.app)
    base = base_of(seeded)
    viewer = client.get(base).text
    assert 'data-view="web"' in viewer and 'data-view="archive"' in viewer

    web = client.get(base + "/web")
    assert web.status_code == 200 and "script-src 'none'" in web.headers["content-security-policy"]
    assert "Council approves harbour bridge budget" in web.text
    assert "An editor's <em>word</em> first." in web.text.replace("&#39;", "'")
    assert "/unsubscribe/" not in web.text and "/preferences/" not in web.text and "{{digest:" not in web.text
    assert "/subscribe/daily" in web.text
    # The email itself keeps the reader's links and links its web version.
    email = client.get(base + "/html").text
    assert "/unsubscribe/" in email and f"/archive/daily/{seeded.day.isoformat()}" in email

    archive = client.get(base + "/archive")
    assert archive.status_code == 200
    assert f'href="/archive/daily/{seeded.day.isoformat()}"' in archive.text and "(this preview)" in archive.text
    assert 'type="application/atom+xml"' in archive.text
    assert client.get("/l/nope/2031-01-01/web").status_code == 404
