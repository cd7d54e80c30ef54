"""What the templates see: a plain dict built from a Selection, the list, the theme and a teaser level.

Everything a template prints comes from here already cleaned: only http(s) links (a ``javascript:`` URL in an
article never becomes a link), UTM parameters added, times in the list's zone, teasers cut on word boundaries,
and placeholder look-alikes in article text broken so content cannot pull in a reader's values.

Everything is in the readers' language (``ctx["language"]``, which the templates' gettext reads too): dates and
bylines through Babel, the labels built here through the catalogs, article text typeset the way its own
language writes quotes and punctuation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from digest.audience import tokens
from digest.audience.lists import archive_is_public
from digest.config import Settings
from digest.hosted import article_url as hosted_article_url
from digest.i18n import dates
from digest.i18n.catalog import Translator
from digest.i18n.languages import SOURCE, UnknownLanguage, effective_language, normalize
from digest.i18n.typography import typeset
from digest.models import RankedItem
from digest.render.note import note_html, note_text
from digest.render.personalize import TOKEN_PATTERN, Context, neutralize, template_values
from digest.render.templates import render_string
from digest.store.tables import MailingListRow
from digest.timeutil import list_zone

SUBJECT_MAX = 78
PREHEADER_MAX = 140
TOP_STORIES = 5
# The body is 600 px wide and a card pads its content 24 px each side: images are given this pixel width (Outlook
# desktop ignores width="100%" and CSS widths on images and would show them at their file's size).
CONTENT_WIDTH = 552
# An image narrower than this (when ingest knows its width) is an icon or thumbnail, not a lead picture.
LEAD_IMAGE_MIN_WIDTH = 300
WORDS_PER_MINUTE = 230
QUICK_LOOKS = "Quick Looks"


@dataclass(frozen=True)
class Teaser:
    """How much of each article an edition shows; the size guard steps through TEASER_LEVELS in order."""

    lede_words: int
    quick_looks: int | None
    quick_look_words: int | None
    also_covered: int | None
    label: str


TEASER_LEVELS: tuple[Teaser, ...] = (
    Teaser(80, None, None, None, "full teasers"),
    Teaser(45, 4, 30, 4, "ledes cut to 45 words, at most 4 Quick Looks"),
    Teaser(25, 3, 20, 2, "ledes cut to 25 words, at most 3 Quick Looks"),
    Teaser(12, 2, 12, 1, "ledes cut to 12 words, at most 2 Quick Looks"),
)


_SPACES = re.compile(r"[^\S\u00a0\u202f]+")


def clean(value: str | None, language: str | None = None) -> str:
    """One line of article text; with ``language``, typeset that language's way (French spaces that keep
    « » : ; ! ? on their word's line, „German" quotes)."""
    text = " ".join((value or "").split())
    # English text keeps the feed's own quotes: nothing in it is wrong for an English reader.
    return neutralize(typeset(text, language) if language and language != SOURCE else text)


def text_language(article_language: str | None, email_language: str) -> str:
    """The language an article's text is typeset in: its own when digest knows it, else the email's."""
    if article_language:
        try:
            return normalize(article_language)
        except UnknownLanguage:
            pass
    return email_language


def cut_words(text: str, limit: int | None) -> str:
    words = _SPACES.split(text.strip())
    if limit is None or len(words) <= limit:
        return text
    return " ".join(words[:limit]).rstrip(",;:-–—") + "…"


def _words_key(text: str) -> str:
    return " " + " ".join(re.findall(r"\w+", text.casefold())) + " "


def _repeats(lede: str, bullet: str) -> bool:
    """Whether ``bullet`` is, word for word, part of ``lede``."""
    key = _words_key(bullet)
    return key.strip() != "" and key in _words_key(lede)


def cut_chars(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut on a word boundary with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    if " " in head:
        head = head[: head.rfind(" ")]
    return head.rstrip(" ,;:·-–—") + "…"


def safe_url(url: str | None) -> str | None:
    """The URL if it is http(s), else None: templates only ever link to web pages."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not parts.netloc:
        return None
    return url


def with_utm(url: str, utm: Mapping[str, Any], campaign: str) -> str:
    """Add UTM parameters the URL does not already carry, appended so the original query stays byte-exact."""
    if not utm:
        return url
    parts = urlsplit(url)
    present = {pair.split("=", 1)[0] for pair in parts.query.split("&") if pair}
    wanted = {"utm_campaign": campaign, **{str(k): str(v) for k, v in utm.items()}}
    add = [(k, v) for k, v in wanted.items() if k not in present and v]
    if not add:
        return url
    query = parts.query + ("&" if parts.query else "") + urlencode(add)
    return urlunsplit(parts._replace(query=query))


def time_label(published: datetime | None, zone: tzinfo, edition_date: date, language: str = "en") -> str:
    """A byline's time in the reader's zone and language ("06:30 MEZ", "3. März 2030, 06:00 UTC")."""
    return dates.byline_time(published, zone, edition_date, language)


def day_label(day: date, edition_date: date, language: str = "en") -> str:
    """"3 Dec"; with the year ("3 Dec 2024") when the day is more than a year before the edition."""
    return dates.day_label(day, edition_date, language)


def list_label(list_row: MailingListRow) -> str:
    return list_row.title or list_row.from_name or list_row.name


def campaign(list_row: MailingListRow, edition_date: date) -> str:
    return f"{list_row.name}-{edition_date.isoformat()}"


_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
_OUTLET_TAGLINE = re.compile(r"\s+[-–—|:·]\s+")


def short_outlet(outlet: str) -> str:
    """The outlet's name without the tagline feeds put in their title ("Le Monde.fr - Actualités et Infos…")."""
    return cut_chars(_OUTLET_TAGLINE.split(outlet, 1)[0], 40) if outlet else ""


def article_view(item: RankedItem, rank: int, *, teaser: Teaser, zone: tzinfo, edition_date: date,
                 utm: Mapping[str, Any], campaign_name: str, base_url: str = "",
                 language: str = "en") -> dict[str, Any]:
    """One article as the templates see it; ``language`` is the email's (labels, dates)."""
    a = item.article
    _ = Translator(language)
    # The article's own language (ingest sets it where the feed says), for a lang attribute on its text, so a
    # screen reader reads a French story in a French voice inside an English email.
    own_language = getattr(a, "language", None)
    own_language = own_language if isinstance(own_language, str) and _LANGUAGE_TAG.match(own_language) else ""
    typo = text_language(own_language, language)

    def text(value: str | None) -> str:
        return clean(value, typo)

    has_deep_look = bool(a.deep_look_title or a.sections)
    # An article with no page of its own (Newslooks text) is read on `digest serve`'s hosted Deep Look page.
    hosted = not a.url and has_deep_look and base_url
    # The hosted page speaks the language the link asks for: the email's.
    url = safe_url(f"{hosted_article_url(base_url, a.id)}?{urlencode({'lang': language})}") if hosted \
        else safe_url(a.url)
    link = with_utm(url, utm, campaign_name) if url else None
    lede = cut_words(text(a.summary) or text(next((p for s in a.sections for p in s.paragraphs if p.strip()), "")),
                     teaser.lede_words)
    # A bullet the lede right above already says (derived Quick Looks start with the lede's sentences) is not
    # printed twice; when nothing else is left the Quick Looks are left out.
    quick_looks = [q for q in (text(q) for q in a.quick_looks if q and q.strip()) if not _repeats(lede, q)]
    if teaser.quick_looks is not None:
        quick_looks = quick_looks[: teaser.quick_looks]
    quick_looks = [cut_words(q, teaser.quick_look_words) for q in quick_looks]
    when = time_label(a.published_at, zone, edition_date, language)
    byline_parts = [p for p in (clean(a.outlet), clean(a.author), clean(a.dateline), when) if p]
    also = []
    for other in item.also_covered_by:
        other_url = safe_url(other.url)
        also.append({"outlet": clean(other.outlet) or text(other.title), "title": text(other.title),
                     "url": with_utm(other_url, utm, campaign_name) if other_url else None})
    if teaser.also_covered is not None:
        also = also[: teaser.also_covered]
    image = safe_url(a.image_url)
    known_width = getattr(a, "image_width", None)
    image_width = min(CONTENT_WIDTH, int(known_width)) if isinstance(known_width, int) and known_width > 0 \
        else CONTENT_WIDTH
    # Every article with a page gets a read-on link, a summary-only feed item above all (its lede is all the
    # email has); the label says where it leads.
    outlet = clean(a.outlet)
    if a.deep_look_title:
        read_on_label = _("Read the Deep Look: %(title)s", title=text(a.deep_look_title))
    elif has_deep_look or not outlet:
        read_on_label = _("Read the full story")
    else:
        read_on_label = _("Read on at %(outlet)s", outlet=short_outlet(outlet))
    return {
        "rank": rank,
        "anchor": f"story-{rank}",
        "id": a.id,
        "title": text(a.title) or _("(untitled)"),
        "url": link,
        "outlet": clean(a.outlet),
        "author": clean(a.author),
        "dateline": clean(a.dateline),
        "time": when,
        "byline_parts": byline_parts,
        "byline": " · ".join(byline_parts),
        "lede": lede,
        "quick_looks_title": quick_looks_title(text(a.quick_looks_title), _),
        "quick_looks": quick_looks,
        # Always the headline's own link (or None): set only when there is more to read there, so templates
        # know whether to offer a read-on link, never a second address to compare with ``url``.
        "deep_look_url": link if has_deep_look else None,
        "deep_look_title": text(a.deep_look_title),
        # Set only when it differs from the email's (compared by primary subtag: a "pt" story in a "pt-BR"
        # email needs no mark), so templates can print it as is.
        "language": own_language if own_language and own_language.split("-")[0].lower()
        != language.split("-")[0].lower() else "",
        "read_on_url": link,
        "read_on_label": read_on_label,
        "summary_only": not quick_looks and not has_deep_look,
        "image_url": image,
        "image_width": image_width,
        # The lead shows its picture only when it is one: not a known-narrow icon or thumbnail.
        "image_is_picture": bool(image) and (not isinstance(known_width, int) or known_width >= LEAD_IMAGE_MIN_WIDTH),
        # The image links to the article: without alt text of its own (feeds rarely give one), the headline
        # names the link for screen readers and shows where images are blocked.
        "image_alt": text(a.image_alt) or text(a.title),
        "also_covered": also,
        "topics": list(a.topics),
    }


def quick_looks_title(own: str, _: Translator) -> str:
    """The Quick Looks' heading: the article's own, unless it is just the English name every Newslooks text
    carries, which the email's language names its own way."""
    return own if own and own.casefold() != QUICK_LOOKS.casefold() else _("Quick Looks")


def topic_sections(list_row: MailingListRow, articles: Sequence[dict[str, Any]], language: str = "en"
                   ) -> list[dict[str, Any]]:
    """The stories under a header per topic, in the list's topic order (ranking order within a topic); a story
    goes under the first of its topics the list has, and stories of none of them come last, under "More".
    (Topic names are the newsroom's own words, shown as they are.)"""
    order = [str(t) for t in (list_row.topics or [])]
    groups: dict[str, list[dict[str, Any]]] = {}
    for article in articles:
        topic = next((t for t in order if t in article["topics"]), "")
        groups.setdefault(topic, []).append(article)
    named = [{"title": topic.replace("-", " ").replace("_", " ").capitalize(), "topic": topic,
              "articles": groups[topic]} for topic in order if topic in groups]
    if "" in groups:
        named.append({"title": Translator(language)("More") if named else "", "topic": "", "articles": groups[""]})
    return named


def reading_minutes(articles: Sequence[Mapping[str, Any]], note: str) -> int:
    """Minutes to read the email itself (headlines, ledes, Quick Looks, the note), at least one."""
    words = len(note.split())
    for a in articles:
        words += sum(len(str(part).split()) for part in (a["title"], a["lede"], *a["quick_looks"]))
    return max(1, round(words / WORDS_PER_MINUTE))


def web_version_url(settings: Settings, base_url: str, list_row: MailingListRow, edition_date: date) -> str:
    """The edition's web version: its page in the public archive or, for a private list, the same path with a
    signed token after it (the list and date only, so a forwarded copy opens it too). "" for a private list
    when no ``secret_key`` is set."""
    page = f"{base_url}/archive/{list_row.name}/{edition_date.isoformat()}"
    if archive_is_public(list_row):
        return page
    token = tokens.web_token(settings, list_row.id, edition_date)
    return f"{page}/{token}" if token else ""


def email_language(settings: Settings, list_row: MailingListRow, language: str | None = None) -> str:
    """The email's language: the variant's readers' (``language``), else the list's, else theme.language."""
    return effective_language(language, getattr(list_row, "language", None), (settings.theme or {}).get("language"))


def build_context(settings: Settings, list_row: MailingListRow, edition_date: date, items: Sequence[RankedItem],
                  *, theme: Mapping[str, str], teaser: Teaser, note: str | None = None,
                  sections: bool = False, language: str | None = None) -> dict[str, Any]:
    """``language``: the readers' (a selection's); None: the list's."""
    lang = email_language(settings, list_row, language)
    zone = list_zone(list_row)
    name = campaign(list_row, edition_date)
    base_url = str(settings.base_url).rstrip("/")
    articles = [article_view(item, i, teaser=teaser, zone=zone, edition_date=edition_date,
                             utm=settings.utm or {}, campaign_name=name,
                             base_url=base_url, language=lang) for i, item in enumerate(items, 1)]
    rest = articles[1:]
    plain_note = note_text(note)
    ctx: dict[str, Any] = {
        "language": lang,
        "theme": dict(theme),
        "list_name": list_row.name,
        "list_label": list_label(list_row),
        # The list's own title when it differs from the brand ("Morning Briefing" from "Example Times").
        "list_subtitle": "" if list_label(list_row) == theme["brand_name"] else list_label(list_row),
        "edition_date": edition_date,
        "date_long": dates.long_date(edition_date, lang),
        "date_label": dates.short_date(edition_date, lang),
        "articles": articles,
        "top_stories": articles[:TOP_STORIES],
        "article_count": len(articles),
        # The first story leads (larger, with its picture); the rest follow as compact cards, in topic
        # sections when the theme asks for them (one untitled section otherwise).
        "lead": articles[0] if articles else None,
        "rest": rest,
        "sections": topic_sections(list_row, rest, lang) if sections else ([{"title": "", "topic": "", "articles": rest}]
                                                                     if rest else []),
        "reading_minutes": reading_minutes(articles, plain_note),
        "note_html": note_html(note),
        "note_text": plain_note,
        "web_url": web_version_url(settings, base_url, list_row, edition_date),
        "subscribe_url": f"{base_url}/subscribe/{list_row.name}",
        "postal_address": clean(settings.postal_address),
        "base_url": base_url,
        "recipient": template_values("html"),
    }
    # The subject appears in three contexts, each with its own placeholder tokens: the Subject header, the
    # HTML <title> (``subject``, for templates) and the text part (``text_context`` swaps it in).
    ctx["subject_header"] = subject_line(settings, ctx, "header")
    ctx["subject"] = subject_line(settings, ctx, "html")
    ctx["subject_text"] = subject_line(settings, ctx, "text")
    ctx["preheader"] = preheader(ctx)
    return ctx


def subject_line(settings: Settings, ctx: Mapping[str, Any], context: Context = "header") -> str:
    articles = ctx["articles"]
    values = {
        "list_name": ctx["list_label"], "list_id": ctx["list_name"], "date_label": ctx["date_label"],
        "date_long": ctx["date_long"], "date": ctx["edition_date"].isoformat(),
        "top_headline": articles[0]["title"] if articles else "",
        "article_count": len(articles), "brand_name": ctx["theme"]["brand_name"],
        "recipient": template_values(context),
    }
    raw = render_string(str(settings.subject_template), values, origin="subject_template (config)")
    # Line breaks from the template or a headline must never reach the Subject header.
    # A template that comes out empty (the default on a day without stories) falls back to the list and date.
    return (keep_whole_tokens(cut_chars(raw, SUBJECT_MAX)).rstrip(" ·:,;-–—")
            or f"{ctx['list_label']} · {ctx['date_label']}")


def keep_whole_tokens(cut: str) -> str:
    """A cut that fell inside a reader-value token (text without spaces, e.g. CJK) loses the token's stub."""
    start = cut.rfind("{{")
    if start < 0 or TOKEN_PATTERN.match(cut, start) or "}}" in cut[start:]:
        return cut
    return cut[:start].rstrip() + "…"


def preheader(ctx: Mapping[str, Any]) -> str:
    articles = ctx["articles"]
    _ = Translator(str(ctx.get("language") or "en"))
    if not articles:
        return _("No new stories in this edition.")
    if len(articles) == 1:
        return cut_chars(articles[0]["lede"] or articles[0]["title"], PREHEADER_MAX)
    return cut_chars(_("Also today: %(headlines)s", headlines=" · ".join(a["title"] for a in articles[1:])),
                     PREHEADER_MAX)


def text_context(ctx: Mapping[str, Any]) -> dict[str, Any]:
    """The same context for the plain-text part, with text-context tokens for the reader's values."""
    return {**ctx, "recipient": template_values("text"), "subject": ctx["subject_text"]}


