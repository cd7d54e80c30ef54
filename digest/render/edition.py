"""Render one variant of an edition: Selection → subject, preheader, MJML, HTML and text, once per content.

The result still holds the placeholder tokens of ``personalize``; it is cached in-process by a hash of
everything that shapes it (the variant's articles and their content, the list, the templates' mtimes, the
settings), so the send loop and the preview pay for Jinja → MJML → premailer once per variant.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from typing import Any

from digest.config import Settings
from digest.i18n import catalog
from digest.models import RankedItem, Selection
from digest.render import mjml, size, templates
from digest.render.context import TEASER_LEVELS, build_context, email_language, text_context, web_version_url
from digest.render.inline import inline_css
from digest.render.text import tidy
from digest.render.theme import resolve_theme, theme_flags
from digest.store.tables import MailingListRow

CACHE_SIZE = 32
_SECRET_SETTINGS = frozenset({"secret_key", "secret_key_fallbacks", "smtp_password", "database_url"})


@dataclass(frozen=True)
class RenderedEdition:
    subject: str
    preheader: str
    mjml: str
    html: str
    text: str
    trimmed: list[str]
    article_count: int
    size_bytes: int  # of ``html`` as UTF-8, tokens still in
    key: str = ""  # content hash: the render cache key
    article_ids: tuple[str, ...] = ()
    list_name: str = ""
    edition_date: date | None = None
    max_html_bytes: int = 0
    teaser_level: int = 0  # index into TEASER_LEVELS the size guard settled on
    language: str = "en"  # the email's: what a reader without a name is greeted as, the Content-Language


_cache: OrderedDict[str, RenderedEdition] = OrderedDict()
_linted: set[str] = set()
_lock = threading.Lock()


def cache_key(settings: Settings, list_row: MailingListRow, edition_date: date, selection: Selection,
              template_fingerprint: str) -> str:
    data = {
        "selection": selection.key,
        "articles": [[item.article.content_hash(), [dataclasses.asdict(o) for o in item.also_covered_by],
                      getattr(item.article, "image_width", None), getattr(item.article, "language", None)]
                     for item in selection.items],
        "list": [list_row.id, list_row.name, list_row.title, list_row.from_name, list_row.from_email,
                 list_row.reply_to, list_row.timezone, getattr(list_row, "language", None)],
        "date": edition_date.isoformat(),
        "note": selection.note,
        "archive": getattr(list_row, "archive", "public"),
        # A private list's link is signed: a new secret_key (kept out of the key itself) changes the render.
        "web_url": web_version_url(settings, "", list_row, edition_date),
        "templates": template_fingerprint,
        # An edited translation changes the words of a render as an edited template does.
        "catalogs": catalog.fingerprint(),
        "settings": {k: v for k, v in sorted(settings.values.items()) if k not in _SECRET_SETTINGS},
        "project": str(settings.project_dir),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _lint(settings: Settings, template_fingerprint: str) -> None:
    if template_fingerprint in _linted:
        return
    names = {p: templates.display_name(str(p), settings) for p in templates.template_files(settings)}
    problems = mjml.lint_files(list(names), names)
    if problems:
        raise problems[0].error()
    _linted.add(template_fingerprint)


@dataclass
class _Attempt:
    context: dict[str, Any]
    mjml: str
    html: str
    size: int


def render_selection(settings: Settings, list_row: MailingListRow, edition_date: date,
                     selection: Selection) -> RenderedEdition:
    """Render ``selection`` for ``list_row`` on ``edition_date``, trimmed to fit ``max_html_bytes``."""
    fingerprint = templates.fingerprint(settings)
    key = cache_key(settings, list_row, edition_date, selection, fingerprint)
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return dataclasses.replace(hit, trimmed=list(hit.trimmed))
    _lint(settings, fingerprint)
    theme = resolve_theme(settings, list_row.from_name)
    sections = theme_flags(settings)["sections"]
    items: list[RankedItem] = list(selection.items)
    limit = int(settings.max_html_bytes)
    base_url = str(settings.base_url)
    language = email_language(settings, list_row, selection.language)

    def attempt(count: int, level: int) -> _Attempt:
        ctx = build_context(settings, list_row, edition_date, items[:count], theme=theme,
                            teaser=TEASER_LEVELS[level], note=selection.note, sections=sections,
                            language=language)
        source = templates.render(settings, templates.HTML_TEMPLATE, ctx)
        html = inline_css(mjml.to_html(source, origin=f"{templates.HTML_TEMPLATE} (rendered MJML)"))
        measured = len(html.encode("utf-8")) + size.personalization_reserve(html, base_url)
        return _Attempt(ctx, source, html, measured)

    fitted = size.fit(attempt, lambda a: a.size, count=len(items), levels=len(TEASER_LEVELS), limit=limit)
    chosen = fitted.result
    text = tidy(templates.render(settings, templates.TEXT_TEMPLATE, text_context(chosen.context)))
    rendered = RenderedEdition(
        subject=chosen.context["subject_header"],
        preheader=chosen.context["preheader"],
        mjml=chosen.mjml,
        html=chosen.html,
        text=text,
        trimmed=describe_trimming(items, fitted.count, fitted.level),
        article_count=fitted.count,
        size_bytes=len(chosen.html.encode("utf-8")),
        key=key,
        article_ids=tuple(item.article.id for item in items[: fitted.count]),
        list_name=list_row.name,
        edition_date=edition_date,
        max_html_bytes=limit,
        teaser_level=fitted.level,
        language=language,
    )
    with _lock:
        _cache[key] = rendered
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return dataclasses.replace(rendered, trimmed=list(rendered.trimmed))


def describe_trimming(items: list[RankedItem], kept: int, level: int) -> list[str]:
    """What the size guard left out, in words for `digest build` and the preview."""
    notes: list[str] = []
    if level > 0:
        notes.append(f"shortened teasers to fit the size limit: {TEASER_LEVELS[level].label}")
    for rank, item in enumerate(items[kept:], kept + 1):
        notes.append(f"dropped #{rank} {item.article.title!r} ({item.article.id}) to fit the size limit")
    return notes
