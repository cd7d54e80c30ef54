"""The public archive on `digest serve`: ``/archive/<list>`` (sent editions, newest first), ``/archive/<list>/
<YYYY-MM-DD>`` (an edition's web version, as readers got it, without their personal links) and
``/archive/<list>/feed.xml`` (Atom). A list whose ``archive`` is ``private`` answers 404 on all three, as does an
edition that has not gone out to anyone yet.

A private list's emails link ``/archive/<list>/<YYYY-MM-DD>/<token>`` instead: the same web version, reached by
a token signed for that list and date (``tokens.web_token``), so only someone who got (or was forwarded) the
email finds it. A token that is forged, altered or made for another list or date answers 404 like a missing page.

The page an edition shows is its most-sent variant's stored HTML (what most readers got, links as sent); a
newsroom that changed its templates since does not rewrite its past. The pages speak the list's language; an
edition's page the language of its variant.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from digest.app import App
from digest.audience.lists import archive_is_public, effective_language
from digest.audience.pages import render
from digest.audience.tokens import BadToken, read_web_token
from digest.i18n import dates
from digest.i18n.catalog import Translator
from digest.i18n.languages import SOURCE
from digest.render.context import list_label
from digest.render.note import note_html
from digest.render.webversion import public_subject, web_html
from digest.store.tables import ArticleRow, DeliveryRow, EditionRow, MailingListRow, VariantRow

ARCHIVE_VALUES = ("public", "private")
ATOM_NS = "http://www.w3.org/2005/Atom"
MAX_EDITIONS = 200
TOP_HEADLINES = 3
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "public, max-age=300",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src https: http:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
}
# The token is the page's only lock: no shared cache may keep it, no search engine list it, and no site an
# article links to learn the URL from a Referer.
_PRIVATE_HEADERS = {**_HEADERS, "Cache-Control": "private, max-age=300", "X-Robots-Tag": "noindex, nofollow",
                    "Referrer-Policy": "no-referrer"}


@dataclass(frozen=True)
class ArchivedEdition:
    edition_id: int
    date: date
    subject: str
    headlines: list[str]
    note: str | None
    sent_at: datetime
    variant_id: int
    language: str = SOURCE  # of the variant that stands for the edition


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def public_list(session: Session, name: str) -> MailingListRow | None:
    """The list if it exists and its archive is public."""
    row = session.scalar(select(MailingListRow).where(MailingListRow.name == name))
    if row is None or not archive_is_public(row):
        return None
    return row


def subscribe_url(base_url: str, list_row: MailingListRow) -> str:
    return f"{base_url}/subscribe/{list_row.name}"


def sent_editions(session: Session, list_row: MailingListRow, base_url: str, *, day: date | None = None,
                  limit: int = MAX_EDITIONS) -> list[ArchivedEdition]:
    """The list's editions that went out to at least one reader, newest first (``day``: only that one)."""
    sent = (select(DeliveryRow.edition_id, func.min(DeliveryRow.sent_at).label("first"))
            .where(DeliveryRow.status == "sent").group_by(DeliveryRow.edition_id).subquery())
    query = (select(EditionRow, sent.c.first).join(sent, sent.c.edition_id == EditionRow.id)
             .where(EditionRow.list_id == list_row.id).order_by(EditionRow.date.desc()).limit(limit))
    if day is not None:
        query = query.where(EditionRow.date == day)
    out: list[ArchivedEdition] = []
    for edition, first in session.execute(query).all():
        # The variant most readers got stands for the edition.
        variant_id = session.scalar(
            select(DeliveryRow.variant_id).where(DeliveryRow.edition_id == edition.id, DeliveryRow.status == "sent")
            .group_by(DeliveryRow.variant_id).order_by(func.count().desc(), DeliveryRow.variant_id).limit(1))
        variant = session.get(VariantRow, variant_id) if variant_id is not None else None
        if variant is None or not variant.html:
            continue
        ids = [str(a) for a in (variant.article_ids or [])][:TOP_HEADLINES]
        titles = dict(session.execute(select(ArticleRow.id, ArticleRow.title).where(ArticleRow.id.in_(ids))).all())
        out.append(ArchivedEdition(
            edition_id=edition.id, date=edition.date,
            subject=public_subject(variant.subject or "", subscribe_url(base_url, list_row), variant.language or SOURCE),
            headlines=[titles[a] for a in ids if titles.get(a)], note=edition.editor_note,
            sent_at=_utc(first or edition.frozen_at or edition.cutoff_at), variant_id=variant.id,
            language=variant.language or SOURCE))
    return out


def banner_html(list_row: MailingListRow, base_url: str, day: date, language: str = SOURCE) -> Markup:
    """The line above a web version: what it is, the archive (a public one only: a private list's would be a
    404), the subscribe link (in ``language``)."""
    _ = Translator(language)
    label = escape(list_label(list_row))
    archive = (f'<a href="{escape(base_url)}/archive/{escape(list_row.name)}" style="color:#1a56db">'
               f'{escape(_("All editions"))}</a> · ') if archive_is_public(list_row) else ""
    return Markup(
        '<div class="web-banner" style="max-width:600px;margin:0 auto;padding:10px 24px;font-family:-apple-system,'
        "'Segoe UI',Helvetica,Arial,sans-serif;font-size:14px;line-height:1.5;color:#1f2328;"
        'background-color:#ffffff;box-sizing:border-box\">'
        f'{label}, {escape(dates.long_date(day, language))} · {archive}'
        f'<a href="{escape(subscribe_url(base_url, list_row))}" style="color:#1a56db">{escape(_("Subscribe"))}</a></div>')


def web_version(session: Session, list_row: MailingListRow, base_url: str, day: date) -> str | None:
    """The web version of ``list_row``'s edition of ``day`` (whoever may see it), or None if it has not gone out."""
    found = sent_editions(session, list_row, base_url, day=day, limit=1)
    if not found:
        return None
    variant = session.get(VariantRow, found[0].variant_id)
    assert variant is not None and variant.html
    language = found[0].language
    return web_html(variant.html, subscribe_url(base_url, list_row), banner_html(list_row, base_url, day, language),
                    language)


def atom_feed(list_row: MailingListRow, base_url: str, editions: list[ArchivedEdition],
              language: str = SOURCE) -> bytes:
    """The Atom feed (RFC 4287) of the archive: one entry per sent edition, newest first, in ``language``."""
    _ = Translator(language)
    ET.register_namespace("", ATOM_NS)

    def el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        node = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            node.text = text
        return node

    archive = f"{base_url}/archive/{list_row.name}"
    feed = ET.Element(f"{{{ATOM_NS}}}feed", {"{http://www.w3.org/XML/1998/namespace}lang": language})
    el(feed, "id", archive)
    el(feed, "title", list_label(list_row))
    el(feed, "subtitle", _("Every edition of %(list)s as it was sent", list=list_label(list_row)))
    newest = editions[0].sent_at if editions else _utc(list_row.created_at)
    el(feed, "updated", newest.isoformat())
    el(feed, "link", rel="self", type="application/atom+xml", href=f"{archive}/feed.xml")
    el(feed, "link", rel="alternate", type="text/html", href=archive)
    author = el(feed, "author")
    el(author, "name", list_row.from_name or list_label(list_row))
    el(feed, "generator", "digest")
    for edition in editions:
        url = f"{archive}/{edition.date.isoformat()}"
        entry = el(feed, "entry")
        el(entry, "id", url)
        el(entry, "title", edition.subject or f"{list_label(list_row)} · {edition.date.isoformat()}")
        el(entry, "updated", edition.sent_at.isoformat())
        el(entry, "published", edition.sent_at.isoformat())
        el(entry, "link", rel="alternate", type="text/html", href=url)
        el(entry, "summary", " · ".join(edition.headlines))
        read = escape(_("Read the edition"))
        content = str(note_html(edition.note)) + "<ul>" + "".join(
            f"<li>{escape(h)}</li>" for h in edition.headlines) + f'</ul><p><a href="{escape(url)}">{read}</a></p>'
        el(entry, "content", content, type="html")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="utf-8", short_empty_elements=True)


def archive_routes(app: App) -> list[BaseRoute]:
    base_url = str(app.settings.base_url).rstrip("/")

    def run(fn: Any, *args: Any) -> Any:
        with app.store.session() as session:
            return fn(session, *args)

    def index_data(session: Session, name: str) -> dict[str, Any] | None:
        row = public_list(session, name)
        if row is None:
            return None
        return {"list_row": row, "editions": sent_editions(session, row, base_url),
                "language": effective_language(app.settings, row)}

    async def index(request: Request) -> Response:
        data = await run_in_threadpool(run, index_data, str(request.path_params["list_name"]))
        if data is None:
            raise HTTPException(404, "no public archive of that name")
        row, language = data["list_row"], data["language"]
        _ = Translator(language)
        html = render("archive.html", {
            "language": language, "title": _("%(list)s: all editions", list=list_label(row)),
            "list_title": list_label(row), "list_name": row.name,
            "editions": data["editions"], "feed_url": f"{base_url}/archive/{row.name}/feed.xml",
            "subscribe_url": subscribe_url(base_url, row), "postal_address": app.settings.postal_address})
        return HTMLResponse(html, headers={**_HEADERS, "Content-Language": language})

    async def feed(request: Request) -> Response:
        data = await run_in_threadpool(run, index_data, str(request.path_params["list_name"]))
        if data is None:
            raise HTTPException(404, "no public archive of that name")
        body = atom_feed(data["list_row"], base_url, data["editions"], data["language"])
        return Response(body, media_type="application/atom+xml; charset=utf-8", headers=_HEADERS)

    def edition_data(session: Session, name: str, day: date) -> str | None:
        row = public_list(session, name)
        return None if row is None else web_version(session, row, base_url, day)

    def signed_edition_data(session: Session, name: str, day: date, token: str) -> str | None:
        try:
            list_id, signed_day = read_web_token(app.settings, token)
        except BadToken:
            return None
        row = session.scalar(select(MailingListRow).where(MailingListRow.name == name))
        # The token names the list by id: a list deleted and made again under the same name is another list.
        if row is None or row.id != list_id or signed_day != day:
            return None
        # Served whatever the list's archive is now: an email sent while it was private keeps a working link.
        return web_version(session, row, base_url, day)

    def edition_day(request: Request) -> date:
        raw = str(request.path_params["day"])
        try:
            day = date.fromisoformat(raw) if _DAY.match(raw) else None
        except ValueError:
            day = None
        if day is None:
            raise HTTPException(404, "not an edition date (YYYY-MM-DD)")
        return day

    async def edition(request: Request) -> Response:
        day = edition_day(request)
        html = await run_in_threadpool(run, edition_data, str(request.path_params["list_name"]), day)
        if html is None:
            raise HTTPException(404, "no edition of that list went out that day")
        return HTMLResponse(html, headers=_HEADERS)

    async def signed_edition(request: Request) -> Response:
        day = edition_day(request)
        html = await run_in_threadpool(run, signed_edition_data, str(request.path_params["list_name"]), day,
                                       str(request.path_params["token"]))
        if html is None:
            # The same answer for a bad token and a missing edition: a guess learns nothing.
            raise HTTPException(404, "no edition of that list went out that day")
        return HTMLResponse(html, headers=_PRIVATE_HEADERS)

    return [
        Route("/archive/{list_name}", index, methods=["GET"]),
        Route("/archive/{list_name}/feed.xml", feed, methods=["GET"]),
        Route("/archive/{list_name}/{day}", edition, methods=["GET"]),
        Route("/archive/{list_name}/{day}/{token}", signed_edition, methods=["GET"]),
    ]
