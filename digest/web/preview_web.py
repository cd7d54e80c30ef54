"""The preview's web-version and archive views: what `digest serve` would show for the edition being looked at.

The web version is built from the edition's render for the list's own selection (what a reader without topics
of their own gets), before anything is sent; the archive page is the list's real archive with the previewed
edition on top when it has not gone out yet, so an editor sees both next to the email.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from digest import editions as pipeline
from digest.audience.lists import effective_language, get_list
from digest.audience.pages import render
from digest.config import Settings
from digest.i18n.catalog import Translator
from digest.render.context import list_label
from digest.render.edition import render_selection
from digest.render.webversion import public_subject, web_html
from digest.store.db import Store
from digest.web.archive import ArchivedEdition, banner_html, sent_editions, subscribe_url


def preview_web_version(settings: Settings, store: Store, list_name: str, day: date) -> str:
    base_url = str(settings.base_url).rstrip("/")
    with store.session() as session:
        list_row = get_list(session, list_name)
        edition = pipeline.get_or_create_edition(session, settings, list_row, day)
        selection = pipeline.select_for(session, settings, edition, None)
    rendered = render_selection(settings, list_row, day, selection)
    return web_html(rendered.html, subscribe_url(base_url, list_row),
                    banner_html(list_row, base_url, day, rendered.language), rendered.language)


def preview_archive(settings: Settings, store: Store, list_name: str, day: date) -> str:
    base_url = str(settings.base_url).rstrip("/")
    with store.session() as session:
        list_row = get_list(session, list_name)
        sent = sent_editions(session, list_row, base_url)
        edition = pipeline.get_or_create_edition(session, settings, list_row, day)
        selection = pipeline.select_for(session, settings, edition, None)
    if all(e.date != day for e in sent) and selection.items:
        rendered = render_selection(settings, list_row, day, selection)
        upcoming = ArchivedEdition(
            edition_id=edition.id, date=day, subject=public_subject(rendered.subject, subscribe_url(base_url, list_row)),
            headlines=[i.article.title for i in selection.items[:3]], note=edition.editor_note,
            sent_at=datetime.now(UTC), variant_id=0)
        sent = sorted([upcoming, *sent], key=lambda e: e.date, reverse=True)
    sent = [replace(e, subject=e.subject + (" (this preview)" if e.date == day else "")) for e in sent]
    language = effective_language(settings, list_row)
    return render("archive.html", {
        "language": language, "title": Translator(language)("%(list)s: all editions", list=list_label(list_row)), "list_title": list_label(list_row),
        "list_name": list_row.name, "editions": sent, "feed_url": f"{base_url}/archive/{list_row.name}/feed.xml",
        "subscribe_url": subscribe_url(base_url, list_row), "postal_address": settings.postal_address})
