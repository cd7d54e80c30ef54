"""Languages of lists and subscribers: the CLI, CSV round trip, variants per (selection, language), and the
public pages in the reader's language (both databases)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from digest import editions
from digest.audience import tokens
from digest.send import plan
from digest.store.tables import DeliveryRow, EditionRow, SubscriberRow, VariantRow
from digest.web.public import create_app

from .audience_support import Web, outbox_messages, path_of, text_of
from .conftest import Project
from .send_support import add_articles, add_subscribers, list_row, send_on_day


def test_lists_take_a_language_and_refuse_unknown_ones(project: Project) -> None:
    created = project.json("lists", "create", "morgen", "--language", "de_de")
    assert created["language"] == "de" and created["effective"]["language"] == "de"
    assert project.json("lists", "show", "morgen")["language"] == "de"
    assert "language: de" in project.run("lists", "show", "morgen").stdout
    bad = project.run("lists", "create", "nacht", "--language", "nl", ok=False)
    assert bad.exit_code != 0 and "'nl' is not a supported language (supported: en, de, fr, es, pt-BR, it)" in (
        bad.output + bad.stderr)
    assert project.run("lists", "show", "nacht", ok=False).exit_code != 0  # nothing was created
    assert project.json("lists", "set", "morgen", "--language", "PT-br")["language"] == "pt-BR"
    refused = project.run("lists", "set", "morgen", "--language", "klingon", ok=False)
    assert refused.exit_code != 0 and "supported: en, de, fr, es, pt-BR, it" in refused.output + refused.stderr
    assert project.json("lists", "show", "morgen")["language"] == "pt-BR"  # unchanged
    cleared = project.json("lists", "set", "morgen", "--clear-language")
    assert cleared["language"] is None and cleared["effective"]["language"] == "en"  # theme.language's default


def test_a_subscriber_s_language_overrides_the_list_s(project: Project) -> None:
    project.run("lists", "create", "morgen", "--language", "de")
    shown = project.json("subscribers", "add", "ana@example.org", "--list", "morgen", "--language", "fr")
    assert shown["language"] == "fr" and shown["effective"]["language"] == "fr"
    other = project.json("subscribers", "add", "jo@example.org", "--list", "morgen")
    assert other["language"] is None and other["effective"]["language"] == "de"
    bad = project.run("subscribers", "add", "x@example.org", "--list", "morgen", "--language", "xx", ok=False)
    assert bad.exit_code != 0 and "supported: en, de, fr, es, pt-BR, it" in bad.output + bad.stderr


def test_csv_language_column_round_trips_and_bad_rows_are_named(project: Project) -> None:
    src = project.root / "in.csv"
    src.write_text("email,name,language\nana@example.org,Ana,pt_br\nben@example.org,Ben,\n"
                   "cy@example.org,Cy,elvish\n", encoding="utf-8")
    report = project.json("subscribers", "import", str(src))
    assert report["new"] == 2 and report["rejected"] == 1
    assert report["rejections"][0]["line"] == 4 and "language: 'elvish' is not a supported language" in \
        report["rejections"][0]["reason"]
    out = project.root / "out.csv"
    project.run("subscribers", "export", "--out", str(out))
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].endswith(",language") and lines[1].endswith(",pt-BR") and lines[2].endswith(",")
    project.run("lists", "create", "copy")
    assert project.json("subscribers", "import", str(out), "--list", "copy")["new"] == 2
    assert project.json("subscribers", "show", "ana@example.org", "--list", "copy")["language"] == "pt-BR"


def _set_language(app: Any, email: str, language: str | None) -> None:
    with app.store.session() as s:
        row = s.scalar(select(SubscriberRow).where(SubscriberRow.email == email))
        row.language = language


def test_each_selection_and_language_renders_once(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    app = project.app()
    add_articles(app, 3)
    add_subscribers(app, 4)
    from digest.audience.lists import set_list_language

    with app.store.session() as s:
        set_list_language(s, s.merge(list_row(app)), "de")
        emails = list(s.scalars(select(SubscriberRow.email).order_by(SubscriberRow.id)))
    # Same topics for all four: one selection. Two read the list's German, one French, one German by choice.
    _set_language(app, emails[1], "fr")
    _set_language(app, emails[2], "de")
    renders: list[str | None] = []
    real = plan.render_selection

    def counting(settings: Any, list_row_: Any, day: Any, selection: Any) -> Any:
        renders.append(selection.language)
        return real(settings, list_row_, day, selection)

    monkeypatch.setattr(plan, "render_selection", counting)
    summary = send_on_day(app)
    assert summary.sent == 4 and summary.variants == 2
    assert sorted(renders) == ["de", "fr"]
    with app.store.session() as s:
        by_email = dict(s.execute(select(DeliveryRow.email, DeliveryRow.variant_id)).all())
        assert s.scalar(select(func.count()).select_from(VariantRow)) == 2
        assert sorted(s.scalars(select(VariantRow.language))) == ["de", "fr"]  # what send time needs
        edition = s.get(EditionRow, s.scalar(select(VariantRow.edition_id)))
        groups = editions.variants_for_list(s, app.settings, edition)
    assert by_email[emails[0]] == by_email[emails[2]] == by_email[emails[3]] != by_email[emails[1]]
    assert sorted((g.selection.language, len(g.subscriber_ids)) for g in groups) == [("de", 3), ("fr", 1)]
    assert len({g.selection.article_ids.__repr__() for g in groups}) == 1  # same articles, two languages
    app.close()


# --- the public pages ---------------------------------------------------------------------------------------


@pytest.fixture
def site(project: Project) -> Iterator[tuple[Project, Any, Web]]:
    project.write_config('outbox_dir = "outbox"\npostal_address = "Fictional Newsroom, 1 Sample Street"\n')
    project.run("lists", "create", "morgen", "--language", "de", "--topics", "politik,sport",
                "--title", "Der Morgen")
    project.run("subscribers", "add", "ana@example.org", "--list", "morgen", "--language", "fr")
    project.run("subscribers", "add", "jo@example.org", "--list", "morgen")
    app = project.app()
    web = Web(create_app(app))
    yield project, app, web
    web.close()
    app.close()


def _links(app: Any, email: str) -> tuple[str, str]:
    with app.store.session() as s:
        row = s.scalar(select(SubscriberRow).where(SubscriberRow.email == email))
        return (path_of(tokens.unsubscribe_url(app.settings, row.id, row.list_id, row.email)),
                path_of(tokens.preferences_url(app.settings, row.id, row.list_id, row.email)))


def test_a_french_reader_of_a_german_list_gets_french_pages(site: tuple[Project, Any, Web]) -> None:
    _, app, web = site
    unsubscribe, preferences = _links(app, "ana@example.org")
    page = web.get(preferences)
    assert page.status_code == 200 and '<html lang="fr">' in page.text
    assert "Vos préférences pour Der Morgen" in page.text and "Enregistrer les préférences" in page.text
    assert "Your preferences" not in page.text and "Einstellungen" not in page.text
    assert page.headers["content-language"] == "fr"
    page = web.get(unsubscribe)
    assert '<html lang="fr">' in page.text and "Ne plus envoyer Der Morgen à" in page.text
    done = web.post(unsubscribe, data={"List-Unsubscribe": "One-Click", "via": "page"})
    assert done.status_code == 200 and '<html lang="fr">' in done.text and "Vous êtes désabonné" in done.text
    # The reader next to her follows the list: German.
    _, german = _links(app, "jo@example.org")
    page = web.get(german)
    assert '<html lang="de">' in page.text and "Ihre Einstellungen für Der Morgen" in page.text


def test_a_reader_changes_language_in_the_preference_centre(site: tuple[Project, Any, Web]) -> None:
    project, app, web = site
    _, preferences = _links(app, "jo@example.org")
    saved = web.post(preferences, data={"action": "save", "timezone": "", "language": "it"})
    assert saved.status_code == 200 and '<html lang="it">' in saved.text and "Le tue preferenze" in saved.text
    assert project.json("subscribers", "show", "jo@example.org", "--list", "morgen")["language"] == "it"
    bad = web.post(preferences, data={"action": "save", "timezone": "Mars/Olympus", "language": "it"})
    assert bad.status_code == 422 and "Fuso orario sconosciuto &#39;Mars/Olympus&#39;" in bad.text
    wrong = web.post(preferences, data={"action": "save", "timezone": "", "language": "tlh"})
    assert wrong.status_code == 422 and "Scegli una lingua dall’elenco." in wrong.text
    assert project.json("subscribers", "show", "jo@example.org", "--list", "morgen")["language"] == "it"
    back = web.post(preferences, data={"action": "save", "timezone": "", "language": ""})
    assert '<html lang="de">' in back.text
    assert project.json("subscribers", "show", "jo@example.org", "--list", "morgen")["language"] is None


def test_subscribe_page_and_confirmation_email_speak_the_list_s_language(site: tuple[Project, Any, Web]) -> None:
    project, _, web = site
    form = web.get("/subscribe/morgen")
    assert '<html lang="de">' in form.text and "Der Morgen abonnieren" in form.text and "E-Mail-Adresse" in form.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    sent = web.post("/subscribe/morgen", data={"csrf_token": token.group(1), "email": "neu@example.org",
                                               "name": "Neu"})
    assert sent.status_code == 200 and "Sehen Sie in Ihr Postfach" in sent.text
    message = outbox_messages(project.root)[-1]
    assert message["Subject"] == "Bitte bestätigen Sie Ihr Abonnement von Der Morgen"
    assert message["Content-Language"] == "de"
    text = text_of(message)
    assert "Hallo Neu," in text and "Der Link ist" in text and "confirm your" not in text
    html = message.get_body(preferencelist=("html",))
    assert html is not None and '<html lang="de">' in str(html.get_content())
    # A broken link knows no reader: the browser's language decides.
    broken = web.get("/preferences/not-a-token", headers={"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"})
    assert broken.status_code == 400 and '<html lang="es">' in broken.text and "Este enlace no es válido" in broken.text


def test_the_hosted_article_speaks_the_language_its_link_asks_for(project: Project) -> None:
    evening = project.root / "story.txt"
    evening.write_text("A fictional council vote/ Sample Desk/ SPRINGFIELD/ A. Writer/ Morning Edition/ "
                       "The council voted, says the fictional lede.\n\nSample Quick Looks\n- One point\n"
                       "Deep Look: The long read\nSPRINGFIELD — A paragraph of the fictional body.\n",
                       encoding="utf-8")
    project.run("ingest", str(evening), "--published", "2026-11-28T05:30:00+00:00")
    app = project.app()
    web = Web(create_app(app))
    try:
        with app.store.session() as s:
            from digest.store.tables import ArticleRow

            article_id = s.scalar(select(ArticleRow.id))
        page = web.get(f"/articles/{article_id}?lang=pt-BR")
        assert '<html lang="pt-BR">' in page.text and "sábado, 28 de novembro de 2026, 05:30 UTC" in page.text
        assert page.headers["content-language"] == "pt-BR"
        page = web.get(f"/articles/{article_id}", headers={"Accept-Language": "de-CH, en;q=0.5"})
        assert '<html lang="de">' in page.text and "Samstag, 28. November 2026, 05:30 UTC" in page.text
        page = web.get(f"/articles/{article_id}?lang=nl")
        assert '<html lang="en">' in page.text and "Saturday, 28 November 2026, 05:30 UTC" in page.text
    finally:
        web.close()
        app.close()
