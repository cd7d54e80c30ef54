"""`GET /articles/{id}` on `digest serve`: the Deep Look of an article that has no page of its own.

Newslooks text arrives without a URL, so an email could offer its Quick Looks but no way to read on. Render links
such articles here (`base_url/articles/<id>`); the page shows the whole stored article, escaped. A retracted
article answers 410 so old emails stop pointing at it. The page speaks the language of ``?lang=`` (what an
email in that language links with), else the browser's, else theme.language.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Route

from digest.app import App
from digest.audience.pages import render
from digest.hosted import ARTICLE_ROUTE
from digest.i18n import dates
from digest.i18n.catalog import Translator
from digest.i18n.languages import UnknownLanguage, effective_language, from_accept_language, normalize
from digest.store.articles import row_to_article
from digest.store.tables import ArticleRow

# The public pages' headers, but cacheable and without a referrer rule: an article page carries no token.
_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src https: http:; "
                               "frame-ancestors 'none'; base-uri 'none'",
}


def article_routes(app: App) -> list[BaseRoute]:
    def load(article_id: str) -> dict[str, Any] | None:
        with app.store.session() as session:
            row = session.get(ArticleRow, article_id)
            if row is None:
                return None
            if row.retracted_at is not None:
                return {"retracted": True}
            return {"retracted": False, "article": row_to_article(row)}

    def language_of(request: Request) -> str:
        try:
            return normalize(request.query_params.get("lang") or "")
        except UnknownLanguage:
            return from_accept_language(request.headers.get("accept-language")) or effective_language(
                None, None, (app.settings.theme or {}).get("language"))

    async def show(request: Request) -> HTMLResponse:
        found = await run_in_threadpool(load, str(request.path_params["article_id"]))
        if found is None:
            raise HTTPException(404, "no such article")
        language = language_of(request)
        _ = Translator(language)
        context = {"postal_address": app.settings.postal_address, "title": _("Article withdrawn"),
                   "language": language}
        headers = {**_HEADERS, "Content-Language": language, "Vary": "Accept-Language"}
        if found["retracted"]:
            return HTMLResponse(render("message.html", {**context, "paragraphs": [
                _("The newsroom withdrew this article after it was sent.")]}), status_code=410, headers=headers)
        article = found["article"]
        published = article.published_at
        label = (f"{dates.long_date(published.date(), language)}, {dates.clock(published, language)} UTC"
                 if published else "")
        html = render("article.html", {**context, "title": article.title, "article": article,
                                       "published_label": label})
        return HTMLResponse(html, headers={**headers, "Cache-Control": "public, max-age=300"})

    return [Route(ARTICLE_ROUTE, show, methods=["GET"])]
