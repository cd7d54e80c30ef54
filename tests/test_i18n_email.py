"""The digest email in the reader's language: every label, the greeting, dates and the plain-text part in each
supported language; a French reader of a German list gets a French email whose links open French pages; the
German and Brazilian editions pass SpamAssassin and axe like the English one."""

from __future__ import annotations

import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import select

from digest.i18n.languages import SOURCE, SUPPORTED
from digest.i18n.messages import email_messages
from digest.render.edition import render_selection
from digest.render.personalize import personalize
from digest.store.tables import SubscriberRow
from digest.web.public import create_app

from .audience_support import Web, outbox_messages, path_of, text_of
from .conftest import Project, require, require_tool
from .render_helpers import EDITION_DATE, LEDES, STORIES, list_row, recipient, selection, settings
from .send_support import add_articles, send_on_day

TRANSLATED = [tag for tag in SUPPORTED if tag != SOURCE]
# EDITION_DATE is Tuesday 4 March 2031: (weekday, month, the subject's short date, a nameless reader's greeting).
EXPECTED = {
    "de": ("Dienstag", "März", "Di., 4. März", "Hallo zusammen"),
    "fr": ("mardi", "mars", "mar. 4 mars", "Bonjour à vous"),
    "es": ("martes", "marzo", "mar, 4 mar", "Hola, lector"),
    "pt-BR": ("terça-feira", "março", "ter., 4 de mar.", "Olá, pessoal"),
    "it": ("martedì", "marzo", "mar 4 mar", "Ciao a tutti"),
}
_PLACEHOLDER = re.compile(r"%\(\w+\)s")


def english_labels(content: str) -> set[str]:
    """The fixed words of every English message of the email (the pieces between placeholders), leaving out
    short ones and any the articles' own (English) text contains: what must not appear in another language."""
    pieces = set()
    for message in email_messages():
        for piece in _PLACEHOLDER.split(message):
            piece = piece.strip(" .,:;·")
            if len(piece) >= 4 and piece not in content:
                pieces.add(piece)
    return pieces


def visible_text(html: str) -> str:
    """Everything a reader can see or hear of the HTML part: text, the title, alt texts."""
    soup = BeautifulSoup(html, "html.parser")
    alts = " ".join(str(img.get("alt", "")) for img in soup.find_all("img"))
    return soup.get_text(" ") + " " + alts


def build(tmp_path: Path, language: str, **values: Any) -> tuple[str, str, str, Any]:
    s = settings(tmp_path, subject_template="{{ list_name }} · {{ date_label }}", **values)
    sel = selection(4)
    sel.items[1].article.url = None  # no page of its own and no Deep Look: the read-on link is left out
    rendered = render_selection(s, list_row(language=language, topics=["politics", "transport"]), EDITION_DATE,
                                sel)
    subject, html, text = personalize(rendered, recipient(name=None))
    return subject, html, text, rendered


@pytest.mark.parametrize("language", TRANSLATED)
def test_an_edition_has_no_english_label_and_its_own_date(tmp_path: Path, language: str) -> None:
    subject, html, text, rendered = build(tmp_path, language, theme={"sections": True})
    weekday, month, short, greeting = EXPECTED[language]
    labels = english_labels(" ".join(STORIES + LEDES) + " The Springfield Ledger Example Newsroom Sample Street")
    assert {"Unsubscribe", "Quick Looks", "Forwarded this email?", "min read", "Read it in your browser"} <= labels
    seen = visible_text(html)
    assert [label for label in labels if label in seen] == []
    assert [label for label in labels if label in text] == []
    assert f'<html lang="{language}"' in html
    for part in (seen, text):
        assert weekday in part and month in part
        assert greeting in part  # the reader gave no name: the greeting's own word for everyone
    assert subject.endswith(short)
    assert rendered.language == language


def test_the_english_edition_says_what_the_others_translate(tmp_path: Path) -> None:
    # The other side of the check above: the labels it looks for are really there in English.
    _, html, text, _ = build(tmp_path, "en", theme={"sections": True})
    seen = visible_text(html)
    for label in ("Unsubscribe", "Quick Looks", "Forwarded this email?", "min read", "Read it in your browser",
                  "Hello there", "Tuesday, 4 March 2031", "Manage your preferences"):
        assert label in seen, label
    assert "Hello there" in text and "Unsubscribe: " in text
    assert "MORE" not in text or "== MORE ==" in text


def test_article_text_is_typeset_in_its_own_language_and_marked_when_it_differs(tmp_path: Path) -> None:
    s = settings(tmp_path)
    sel = selection(2)
    sel.items[0].article.title = 'Der Rat sagt "ja" zur Brücke'
    sel.items[0].article.language = "de"
    sel.items[1].article.language = "pt"
    rendered = render_selection(s, list_row(language="pt-BR"), EDITION_DATE, sel)
    soup = BeautifulSoup(rendered.html, "html.parser")
    heads = soup.select("h2.headline")
    assert heads[0].get_text(strip=True) == "Der Rat sagt \u201eja\u201c zur Brücke"
    assert heads[0].get("lang") == "de"
    assert heads[1].get("lang") is None  # a Portuguese story in a Brazilian email needs no mark


def test_the_message_says_its_language(tmp_path: Path) -> None:
    from email import message_from_bytes, policy

    from digest.render.message import build_message

    s = settings(tmp_path)
    rendered = render_selection(s, list_row(language="it"), EDITION_DATE, selection(2))
    msg = message_from_bytes(build_message(s, list_row(language="it"), rendered, recipient(name=None)),
                             policy=policy.default)
    assert msg["Content-Language"] == "it"
    assert "Ciao a tutti" in text_of(msg)  # type: ignore[arg-type]


# --- sent through the store: a French reader of a German list ------------------------------------------------


def _body_link(message: EmailMessage, path: str) -> str:
    html = message.get_body(preferencelist=("html",))
    assert html is not None
    soup = BeautifulSoup(str(html.get_content()), "html.parser")
    links = [a["href"] for a in soup.find_all("a", href=True) if f"/{path}/" in a["href"]]
    assert links, f"no {path} link in the email"
    return str(links[0])


def test_a_french_reader_of_a_german_list_gets_a_french_email_and_pages(project: Project) -> None:
    project.write_config('outbox_dir = "outbox"\npostal_address = "Fictional Newsroom, 1 Sample Street"\n')
    project.run("lists", "create", "morgen", "--language", "de", "--title", "Der Morgen")
    project.run("subscribers", "add", "ana@example.org", "--list", "morgen", "--language", "fr")
    project.run("subscribers", "add", "jo@example.org", "--list", "morgen", "--name", "Jo Beispiel")
    app = project.app()
    try:
        add_articles(app, 3)
        summary = send_on_day(app, list_name="morgen")
        assert summary.sent == 2 and summary.variants == 2
        by_reader = {str(m["To"]): m for m in outbox_messages(project.root)}
        ana = next(m for to, m in by_reader.items() if "ana@" in to)
        jo = next(m for to, m in by_reader.items() if "jo@" in to)
        assert ana["Content-Language"] == "fr" and jo["Content-Language"] == "de"
        ana_text, jo_text = text_of(ana), text_of(jo)
        assert "Bonjour à vous" in ana_text and "Se désabonner" in ana_text
        assert "Hallo Jo Beispiel" in jo_text and "Abbestellen" in jo_text
        for label in ("Unsubscribe", "Manage your preferences", "Hello"):
            assert label not in ana_text and label not in jo_text
        web = Web(create_app(app))
        try:
            for kind in ("unsubscribe", "preferences"):
                page = web.get(path_of(_body_link(ana, kind)))
                assert page.status_code == 200 and '<html lang="fr">' in page.text, kind
                page = web.get(path_of(_body_link(jo, kind)))
                assert page.status_code == 200 and '<html lang="de">' in page.text, kind
        finally:
            web.close()
        with app.store.session() as s:
            assert s.scalar(select(SubscriberRow.status).where(SubscriberRow.email == "ana@example.org")) \
                == "active"  # opening the pages changed nothing
    finally:
        app.close()


# --- SpamAssassin and axe for the German and Brazilian editions ----------------------------------------------


@pytest.mark.parametrize("language", ["de", "pt-BR"])
def test_localized_editions_score_low_with_spamassassin(sqlite_project: Project, shared_dir: Path,
                                                        language: str) -> None:
    from .test_render_spam import MAX_SCORE, spam_score

    spamassassin = require_tool("spamassassin")
    sqlite_project.write_config('postal_address = "Fictional Newsroom, 1 Sample Street"\n[theme]\nsections = true\n')
    sqlite_project.run("lists", "create", "daily", "--language", language)
    if language == "de":
        feed = shared_dir / "samples" / "feeds" / "heise_developer_2016-02-01.atom"
        sqlite_project.run("ingest", str(feed), env={"DIGEST_FIRST_EDITION_LOOKBACK_HOURS": "100000"})
        day = "2016-02-02"
    else:
        from .test_render_spam import carrying_date

        samples = Path(__file__).resolve().parent.parent / "samples" / "articles"
        require(samples.is_dir(), "samples/articles")
        for folder in sorted(p for p in samples.iterdir() if p.is_dir()):
            sqlite_project.run("ingest", str(folder), "--topic", folder.name)
        day = carrying_date(sqlite_project).isoformat()
    data = sqlite_project.json("build", "--list", "daily", "--date", day, "--out", "out",
                               env={"DIGEST_FIRST_EDITION_LOOKBACK_HOURS": "100000"})
    assert data["articles"] >= 3, data
    eml = Path(data["files"]["eml"])
    assert f"Content-Language: {language}" in eml.read_text(encoding="utf-8", errors="replace")
    score, report = spam_score(eml, spamassassin)
    assert score <= MAX_SCORE, report


@pytest.mark.browser
@pytest.mark.parametrize("language", ["de", "pt-BR"])
def test_localized_editions_pass_axe(tmp_path: Path, language: str) -> None:
    from .test_render_browser import ARGS, AXE, AXE_IGNORED, CHROMIUM, open_page

    require_tool("chromium", CHROMIUM)
    require(AXE.is_file(), "axe-core (npm ci)")
    from playwright.sync_api import sync_playwright

    _, html, _, _ = build(tmp_path, language, theme={"sections": True})
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            bad: list[Any] = []
            for scheme in ("light", "dark"):
                page = open_page(browser, html, 375, scheme)
                try:
                    assert page.evaluate("document.documentElement.lang") == language
                    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
                    assert scroll <= inner, f"{scheme}: {scroll}px of content in a {inner}px viewport"
                    page.add_script_tag(path=str(AXE))
                    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
                finally:
                    page.close()
                bad += [(scheme, v["id"], [n["target"] for n in v["nodes"][:3]]) for v in result["violations"]
                        if v["impact"] in {"serious", "critical"} and v["id"] not in AXE_IGNORED]
        finally:
            browser.close()
    assert bad == [], bad


def test_a_hosted_deep_look_is_linked_in_the_email_s_language(tmp_path: Path) -> None:
    sel = selection(1)
    sel.items[0].article.url = None  # Newslooks text: read on digest serve's hosted page
    sel.items[0].article.deep_look_title = "Wie die Brücke bezahlt wird"
    rendered = render_selection(settings(tmp_path, base_url="https://news.example.org"), list_row(language="de"),
                                EDITION_DATE, sel)
    link = BeautifulSoup(rendered.html, "html.parser").select_one("h2.headline a")["href"]
    assert link.startswith("https://news.example.org/articles/art001?lang=de&utm_")


def test_bylines_are_in_the_email_s_language_with_the_year_for_old_articles() -> None:
    from datetime import UTC, date, datetime
    from zoneinfo import ZoneInfo

    from digest.render.context import time_label

    edition = date(2031, 3, 4)
    assert time_label(datetime(2030, 3, 3, 6, 0, tzinfo=UTC), UTC, edition, "de") == "3. März 2030, 06:00 UTC"
    assert time_label(datetime(2031, 3, 2, 6, 0, tzinfo=UTC), ZoneInfo("Europe/Berlin"), edition, "de") == (
        "2. März, 07:00 MEZ")
    assert time_label(datetime(2031, 3, 4, 9, 5, tzinfo=UTC), ZoneInfo("America/Sao_Paulo"), edition,
                      "pt-BR") == "06:05 BRT"
    assert time_label(datetime(2029, 12, 31, 9, 5, tzinfo=UTC), UTC, edition, "pt-BR") == (
        "31 de dez. de 2029, 09:05 UTC")
