"""Pages digest serves itself, named in one place: render links to them, `digest serve` routes them, and the
feedback part reads clicks on them. Pure: no web framework, no store."""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit

ARTICLES_PREFIX = "/articles/"
# ":path", because an id may hold a "/" (ids from JSON imports are the newsroom's own); links quote it.
ARTICLE_ROUTE = ARTICLES_PREFIX + "{article_id:path}"


def article_url(base_url: str, article_id: str) -> str:
    """The hosted Deep Look page of an article that has no page of its own."""
    return f"{base_url.rstrip('/')}{ARTICLES_PREFIX}{quote(article_id, safe='')}"


def article_id_from(url: str) -> str | None:
    """The article id a hosted-page link names, or None for any other link."""
    path = urlsplit(url).path
    if ARTICLES_PREFIX not in path:
        return None
    tail = path.rsplit(ARTICLES_PREFIX, 1)[1].rstrip("/")
    return unquote(tail) if tail and "/" not in tail else None
