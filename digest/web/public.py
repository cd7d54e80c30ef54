"""The public pages of `digest serve`: subscribe (form and JSON), confirm, preferences, unsubscribe, webhooks.

The pages are thin: each checks its input, calls ``digest.audience.signup`` inside one store transaction, and
renders an autoescaped template in the reader's language (the subscriber's, else the list's, else
theme.language; a page that knows neither follows the browser's Accept-Language). Links carry signed tokens; a forged, altered or expired token gets a 4xx page
and changes nothing. Every page is sent with ``Referrer-Policy: no-referrer`` so a token in the address never
leaks to another site, and is never cached.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs

from itsdangerous import BadSignature
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.app import App
from digest.audience import signup
from digest.audience.confirmation import send_confirmation
from digest.audience.lifecycle import SUPPRESSING_STATUSES
from digest.audience.links import GoneSubscriber, Resolved, resolve
from digest.audience.lists import effective_language as list_language
from digest.audience.lists import ensure_list, get_list
from digest.audience.pages import render
from digest.audience.subscribers import effective_language
from digest.audience.tokens import BadToken, preferences_url, serializer, unsubscribe_url
from digest.audience.validate import (
    Invalid,
    all_timezones,
    check_sendable,
    clean_name,
    normalize_email,
    parse_topics,
)
from digest.errors import NotFound
from digest.i18n.catalog import Translator
from digest.i18n.languages import SOURCE, SUPPORTED, babel_locale, from_accept_language
from digest.i18n.languages import effective_language as pick_language
from digest.store.tables import MailingListRow
from digest.web.archive import archive_routes
from digest.web.articles import article_routes
from digest.web.webhooks import webhook_routes

log = logging.getLogger(__name__)
T = TypeVar("T")

CSRF_COOKIE = "digest_csrf"
MAX_FORM_BYTES = 64 * 1024
CSRF_MAX_AGE = 86400  # seconds a subscribe form (its cookie and signed field) stays usable
ONE_CLICK = "One-Click"
_SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
}
# A private list's web version (/archive/LIST/DATE/TOKEN) is a working link too: its token goes, the date stays.
_TOKEN_PATH = re.compile(r"/(unsubscribe|confirm|preferences|archive/[^/?\s\"]+/\d{4}-\d{2}-\d{2})/[^/?\s\"]+")


class TokenMaskFilter(logging.Filter):
    """Access logs must not hold working links: a logged unsubscribe token would let anyone reading logs use it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_TOKEN_PATH.sub(r"/\1/…", a) if isinstance(a, str) else a for a in record.args)
        return True


class BodyLimit:
    """Refuse (413) a page request whose body grows past ``limit`` bytes, as it streams in.

    Checking Content-Length is not enough: a chunked request declares none, and the form parser (or
    ``request.body()`` for the one-click body) would otherwise buffer whatever arrives. Webhooks read their own
    bodies against ``webhook_max_body_bytes`` and are left alone here.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_FORM_BYTES, skip_prefix: str = "/webhooks/") -> None:
        self.app, self.limit, self.skip_prefix = app, limit, skip_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(self.skip_prefix):
            await self.app(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(413, "Request too large")
            return message

        await self.app(scope, limited, send)


class _Pages:
    def __init__(self, app: App) -> None:
        self.app = app
        self.settings = app.settings
        serializer(self.settings, "csrf")  # no secret_key: refuse to start (ConfigError) rather than serve
        self.secure_cookie = str(self.settings.base_url).startswith("https://")

    # --- helpers ----------------------------------------------------------------------------------------

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(session, *args)`` in one transaction, off the event loop."""

        def work() -> T:
            with self.app.store.session() as session:
                return fn(session, *args)

        return await run_in_threadpool(work)

    def page(self, template: str, status: int = 200, *, language: str | None = None, **context: Any
             ) -> HTMLResponse:
        """``template`` in ``language`` (None: theme.language's, for a page that knows no reader or list)."""
        language = language or self.default_language()
        context.setdefault("postal_address", self.settings.postal_address)
        context.setdefault("title", "")
        headers = {**_SECURITY_HEADERS, "Content-Language": language}
        return HTMLResponse(render(template, {**context, "language": language}), status_code=status,
                            headers=headers)

    def message(self, title: str, *paragraphs: str, status: int = 200, link: tuple[str, str] | None = None,
                language: str | None = None) -> HTMLResponse:
        """A title and paragraphs (already in ``language``), and optionally one link as (href, text)."""
        href, text = link or ("", "")
        return self.page("message.html", status, language=language, title=title, paragraphs=list(paragraphs),
                         link_href=href, link_text=text)

    def browser_language(self, request: Request) -> str:
        """For pages that know no reader or list: the browser's choice among ours, else the default list's."""
        return from_accept_language(request.headers.get("accept-language")) or self.default_language()

    def default_language(self) -> str:
        return pick_language(None, None, (self.settings.theme or {}).get("language"))

    def token_error(self, exc: BadToken, language: str) -> HTMLResponse:
        _ = Translator(language)
        if isinstance(exc, GoneSubscriber):
            return self.message(_("Subscription not found"),
                                _("This link belongs to a subscription that no longer exists."),
                                _("Nothing was changed."), status=404, language=language)
        if exc.expired:
            return self.message(_("This link has expired"), _("This link has expired."),
                                _("Subscribe again to get a new confirmation link, or use the link in a newer "
                                  "email."), status=410, language=language)
        return self.message(_("This link is not valid"), _("This link is not valid."),
                            _("Nothing was changed."), status=400, language=language)

    def reader_language(self, resolved: Resolved) -> str:
        return effective_language(resolved.subscriber, resolved.list_row, self.settings)

    def list_title(self, list_row: MailingListRow) -> str:
        return list_row.title or list_row.name

    # --- subscribe ---------------------------------------------------------------------------------------

    def _load_list(self, session: Any, name: str | None) -> dict[str, Any]:
        row = get_list(session, name) if name else ensure_list(session, self.settings)
        return {"id": row.id, "name": row.name, "title": self.list_title(row), "topics": list(row.topics or []),
                "double_opt_in": row.double_opt_in, "language": list_language(self.settings, row)}

    def _csrf_pair(self, request: Request) -> tuple[str, str]:
        nonce = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(18)
        return nonce, str(serializer(self.settings, "csrf").dumps(nonce))

    def _csrf_ok(self, request: Request, field: str) -> bool:
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if not cookie or not field:
            return False
        try:
            nonce = serializer(self.settings, "csrf").loads(field, max_age=CSRF_MAX_AGE)
        except BadSignature:
            return False
        return isinstance(nonce, str) and hmac.compare_digest(nonce, cookie)

    def subscribe_form(self, request: Request, info: dict[str, Any], *, status: int = 200, error: str = "",
                       email: str = "", name: str = "", chosen: list[str] | None = None) -> HTMLResponse:
        nonce, token = self._csrf_pair(request)
        _ = Translator(info["language"])
        response = self.page("subscribe.html", status, language=info["language"],
                             title=_("Subscribe to %(list)s", list=info["title"]),
                             list_title=info["title"], action=request.url.path, csrf_token=token, error=error,
                             email=email, name=name, topics=info["topics"], chosen=chosen or [],
                             double_opt_in=info["double_opt_in"])
        response.set_cookie(CSRF_COOKIE, nonce, max_age=CSRF_MAX_AGE, httponly=True, samesite="strict",
                            secure=self.secure_cookie, path="/")
        return response

    async def subscribe(self, request: Request) -> Response:
        list_name = request.path_params.get("list_name")
        try:
            info = await self.db(self._load_list, list_name)
        except NotFound:
            language = self.browser_language(request)
            _ = Translator(language)
            return self.message(_("No such list"),
                                _("There is no list named %(name)s.", name=repr(list_name)), status=404, language=language)
        _ = Translator(info["language"])
        if request.method != "POST":
            return self.subscribe_form(request, info)
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            return self.message(_("Unsupported request"),
                                _("Send the subscribe form, or use /api/subscribe with JSON."), status=415, language=info["language"])
        if _too_large(request):
            return self.message(_("Request too large"), status=413, language=info["language"])
        form = await request.form(max_files=0, max_fields=60)
        if not self._csrf_ok(request, str(form.get("csrf_token") or "")):
            return self.subscribe_form(request, info, status=403,
                                       error=_("The form expired or came from another site. Please send it "
                                               "again."))
        if str(form.get("website") or "").strip():
            # A bot filled the hidden field: answer as if it worked and keep nothing, so it learns nothing.
            return self.thanks(info)
        email_raw = str(form.get("email") or "")
        chosen = [str(t) for t in form.getlist("topics")]
        return await self.handle_subscribe(request, info, email_raw, str(form.get("name") or ""), chosen,
                                           as_json=False)

    async def api_subscribe(self, request: Request) -> Response:
        # JSON only: a cross-site page cannot send application/json without a CORS preflight, which we never allow.
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return JSONResponse({"error": "Content-Type must be application/json"}, status_code=415)
        if _too_large(request):
            return JSONResponse({"error": "request too large"}, status_code=413)
        try:
            data = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return JSONResponse({"error": "the body is not valid JSON"}, status_code=400)
        if not isinstance(data, dict):
            return JSONResponse({"error": "the body must be a JSON object with an 'email' field"}, status_code=400)
        try:
            info = await self.db(self._load_list, data.get("list") if isinstance(data.get("list"), str) else None)
        except NotFound:
            return JSONResponse({"error": f"list: no list named {data.get('list')!r}"}, status_code=404)
        topics = data.get("topics") or []
        if isinstance(topics, str):
            topics = [topics]
        if not isinstance(topics, list):
            return JSONResponse({"error": "topics: must be a list of strings"}, status_code=422)
        name = data["name"] if isinstance(data.get("name"), str) else ""
        return await self.handle_subscribe(request, info, str(data.get("email") or ""), name,
                                           [str(t) for t in topics], as_json=True)

    async def handle_subscribe(self, request: Request, info: dict[str, Any], email_raw: str, name_raw: str,
                               chosen: list[str], *, as_json: bool) -> Response:
        ip = request.client.host if request.client else "unknown"
        _ = Translator(info["language"])
        try:
            await self.db(signup.count_ip, self.settings, ip)
        except signup.RateLimited as exc:
            return self.too_many(str(exc), as_json, info["language"])
        # A reader sees why in their language (in English, the checker's own precise words); the JSON API
        # always gets the checker's words.
        reader_errors = {
            "email": _("This is not an email address we can send to. Please check it."),
            "name": _("Please shorten the name or leave out unusual characters."),
            "topics": _("Please choose topics from the ones offered."),
        }

        def invalid(field: str, exc: Invalid) -> Response:
            if as_json:
                return JSONResponse({"error": f"{field}: {exc}"}, status_code=422)
            error = str(exc) if info["language"] == SOURCE else reader_errors[field]
            return self.subscribe_form(request, info, status=422, error=error, email=email_raw,
                                       name=name_raw, chosen=chosen)

        # One check per field, so the error names the field that is wrong.
        try:
            email = check_sendable(normalize_email(email_raw), self.settings.backend)
        except Invalid as exc:
            return invalid("email", exc)
        try:
            name = clean_name(name_raw)
        except Invalid as exc:
            return invalid("name", exc)
        try:
            topics = parse_topics(chosen, info["topics"]) if info["topics"] else []
        except Invalid as exc:
            return invalid("topics", exc)
        try:
            await self.db(signup.count_address, self.settings, email)
        except signup.RateLimited as exc:
            return self.too_many(str(exc), as_json, info["language"])

        def act(session: Any) -> signup.Outcome:
            return signup.subscribe(session, get_list(session, info["name"]), email, name=name, topics=topics)

        outcome = await self.db(act)
        if outcome.confirm is not None:
            sid, address, person, version = outcome.confirm

            def send() -> None:
                with self.app.store.session() as session:
                    list_row = get_list(session, info["name"])
                send_confirmation(self.settings, list_row, sid, address, person, version=version)

            try:
                await run_in_threadpool(send)
            except Exception:  # the sending backend failed: say so, the person can simply try again
                log.exception("confirmation email to subscriber %s of list %s failed", sid, info["name"])
                if as_json:
                    return JSONResponse({"error": "could not send the confirmation email; try again later"},
                                        status_code=503)
                return self.message(_("Please try again later"),
                                    _("We could not send the confirmation email."), status=503, language=info["language"])
        if as_json:
            status = "pending" if info["double_opt_in"] else "subscribed"
            return JSONResponse({"status": status, "list": info["name"], "message": _thanks_text(info)},
                                status_code=202, headers={"Content-Language": info["language"]})
        return self.thanks(info)

    def thanks(self, info: dict[str, Any]) -> HTMLResponse:
        _ = Translator(info["language"])
        title = _("Check your inbox") if info["double_opt_in"] else _("Thank you")
        return self.message(title, _thanks_text(info), language=info["language"])

    def too_many(self, why: str, as_json: bool, language: str) -> Response:
        if as_json:
            return JSONResponse({"error": why}, status_code=429, headers={"Retry-After": "3600"})
        _ = Translator(language)
        response = self.message(_("Too many requests"),
                                _("Too many subscribe requests came from here or for this address. Please try "
                                  "again later."), status=429, language=language)
        response.headers["Retry-After"] = "3600"
        return response

    # --- confirm -----------------------------------------------------------------------------------------

    async def confirm(self, request: Request) -> Response:
        token = request.path_params["token"]

        def work(session: Any) -> Response:
            try:
                resolved = resolve(session, self.settings, "confirm", token)
            except BadToken as exc:
                return self.token_error(exc, self.browser_language(request))
            title = self.list_title(resolved.list_row)
            language = self.reader_language(resolved)
            _ = Translator(language)
            email = resolved.subscriber.email
            # A new reader's first chance to pick topics and a time zone, before any edition brings the link.
            choose = (_("Choose your topics, time zone and language") if resolved.list_row.topics
                      else _("Choose your time zone and language"))
            if resolved.subscriber.status == "active":
                return self.message(_("You are subscribed"),
                                    _("%(email)s already receives %(list)s.", email=email, list=title),
                                    link=(_preferences_link(self, resolved) or "", choose), language=language)
            if request.method != "POST":
                # Showing a button instead of confirming on GET: link scanners in mailboxes open every link.
                return self.page("confirm.html", language=language, title=_("Confirm your subscription"),
                                 email=email, list_title=title, action=request.url.path)
            result = signup.confirm(session, resolved)
            if result.kind == "stale":
                return self.message(_("This link is no longer valid"),
                                    _("The subscription changed after this link was sent. Subscribe again to get "
                                      "a new one."), status=410, language=language)
            return self.message(_("You are subscribed"),
                                _("Thank you: %(email)s will receive %(list)s.", email=email, list=title),
                                link=(_preferences_link(self, resolved) or "", choose), language=language)

        return await self.db(work)

    # --- unsubscribe -------------------------------------------------------------------------------------

    async def unsubscribe(self, request: Request) -> Response:
        token = request.path_params["token"]
        one_click = from_page = False
        if request.method == "POST":
            # Mail clients post one-click requests themselves: these answers are for machines, in the browser's
            # language should a person ever see one.
            if _too_large(request):
                language = self.browser_language(request)
                return self.message(Translator(language)("Request too large"), status=413, language=language)
            one_click, from_page = await _read_one_click(request)
            if not one_click:
                language = self.browser_language(request)
                _ = Translator(language)
                return self.message(_("Not unsubscribed"),
                                    _("The request did not ask to unsubscribe (expected "
                                      "List-Unsubscribe=One-Click). Nothing was changed."), status=400, language=language)

        def work(session: Any) -> Response:
            try:
                resolved = resolve(session, self.settings, "unsubscribe", token)
            except BadToken as exc:
                return self.token_error(exc, self.browser_language(request))
            sub, title = resolved.subscriber, self.list_title(resolved.list_row)
            language = self.reader_language(resolved)
            _ = Translator(language)
            if request.method != "POST":  # GET and HEAD never unsubscribe: mail scanners open every link
                return self.page("unsubscribe.html", language=language, title=_("Unsubscribe"), email=sub.email,
                                 list_title=title, action=request.url.path,
                                 already=sub.status in SUPPRESSING_STATUSES,
                                 preferences_link=_preferences_link(self, resolved))
            signup.unsubscribe_via_link(session, resolved, one_click=not from_page)
            return self.message(_("You are unsubscribed"),
                                _("%(email)s will receive no more %(list)s.", email=sub.email, list=title), language=language)

        return await self.db(work)

    # --- preferences -------------------------------------------------------------------------------------

    async def preferences(self, request: Request) -> Response:
        token = request.path_params["token"]
        form = None
        if request.method == "POST":
            if _too_large(request):
                language = self.browser_language(request)
                return self.message(Translator(language)("Request too large"), status=413, language=language)
            form = await request.form(max_files=0, max_fields=200)

        def work(session: Any) -> Response:
            try:
                resolved = resolve(session, self.settings, "preferences", token)
            except BadToken as exc:
                return self.token_error(exc, self.browser_language(request))
            saved, error, status = False, "", 200
            if form is not None:
                action = str(form.get("action") or "save")
                if action == "resubscribe":
                    signup.resubscribe_via_preferences(session, resolved)
                    saved = True
                elif resolved.subscriber.status not in SUPPRESSING_STATUSES:
                    try:
                        signup.update_preferences(
                            resolved, topics=[str(t) for t in form.getlist("topics")],
                            timezone_=str(form.get("timezone") or ""), paused=bool(form.get("paused")),
                            language=str(form.get("language") or ""))
                        saved = True
                    except signup.PreferenceInvalid as exc:
                        error, status = _preference_error(self.reader_language(resolved), exc), 422
            return self.preferences_page(request, resolved, saved=saved, error=error, status=status)

        return await self.db(work)

    def preferences_page(self, request: Request, resolved: Resolved, *, saved: bool, error: str,
                         status: int) -> HTMLResponse:
        sub, list_row = resolved.subscriber, resolved.list_row
        language = self.reader_language(resolved)
        _ = Translator(language)
        labels = {"active": _("active"), "pending": _("waiting for your confirmation"),
                  "unsubscribed": _("unsubscribed"), "bounced": _("stopped (emails to this address bounced)"),
                  "complained": _("stopped (marked as spam)")}
        unsub = unsubscribe_url(self.settings, sub.id, list_row.id, sub.email)
        return self.page("preferences.html", status, language=language, title=_("Your preferences"),
                         list_title=self.list_title(list_row),
                         email=sub.email, sub_status=sub.status, status_label=labels.get(sub.status, sub.status),
                         saved=saved, error=error, action=request.url.path, topics=list(list_row.topics or []),
                         chosen=list(sub.topics or []), timezone=sub.timezone or "",
                         list_timezone=list_row.timezone, zones=all_timezones(), paused=sub.paused,
                         languages=_language_choices(), chosen_language=sub.language or "",
                         list_language=_language_name(list_language(self.settings, list_row)),
                         unsubscribe_action="/unsubscribe/" + unsub.rsplit("/", 1)[1])

    # --- misc --------------------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        return RedirectResponse("/subscribe", status_code=303)

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True})


def _preferences_link(pages: _Pages, resolved: Resolved) -> str | None:
    if resolved.subscriber.status in SUPPRESSING_STATUSES:
        return None
    url = preferences_url(pages.settings, resolved.subscriber.id, resolved.list_row.id, resolved.subscriber.email)
    return "/preferences/" + url.rsplit("/", 1)[1]


def _thanks_text(info: dict[str, Any]) -> str:
    _ = Translator(info["language"])
    if info["double_opt_in"]:
        return _("If this address can receive %(list)s, an email with a confirmation link is on its way. Open it "
                 "to start your subscription.", list=info["title"])
    return _("Thank you for subscribing to %(list)s.", list=info["title"])


def _preference_error(language: str, exc: signup.PreferenceInvalid) -> str:
    if language == SOURCE:
        return str(exc)
    _ = Translator(language)
    if exc.field == "timezone":
        return _("Unknown time zone %(zone)s: please choose one from the list.", zone=repr(exc.value))
    if exc.field == "language":
        return _("Please choose a language from the list.")
    return _("Please choose topics from the ones offered.")


def _language_name(tag: str) -> str:
    """A language's own name, capitalized as a menu entry ("Deutsch", "Português (Brasil)")."""
    name = babel_locale(tag).get_display_name(babel_locale(tag)) or tag
    return name[:1].upper() + name[1:]


def _language_choices() -> list[tuple[str, str]]:
    """(tag, name) of every supported language, each named in its own language, so a reader finds theirs."""
    return [(tag, _language_name(tag)) for tag in SUPPORTED]


def _too_large(request: Request) -> bool:
    declared = request.headers.get("content-length", "")
    return declared.isdigit() and int(declared) > MAX_FORM_BYTES


async def _read_one_click(request: Request) -> tuple[bool, bool]:
    """(asks to unsubscribe, sent by our own page's button). RFC 8058: the body is the form field
    ``List-Unsubscribe=One-Click``, urlencoded or multipart; our page's button adds ``via=page``."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form(max_files=0, max_fields=20)
        return form.get("List-Unsubscribe") == ONE_CLICK, form.get("via") == "page"
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return False, False
    fields = parse_qs(body.decode("utf-8", "replace").strip())
    return fields.get("List-Unsubscribe") == [ONE_CLICK], fields.get("via") == ["page"]


def create_app(app: App) -> Starlette:
    """The public web app (`digest serve`); raises ConfigError when secret_key is missing."""
    pages = _Pages(app)
    routes: list[BaseRoute] = [
        Route("/", pages.index, methods=["GET"]),
        Route("/healthz", pages.health, methods=["GET"]),
        Route("/subscribe", pages.subscribe, methods=["GET", "POST"]),
        Route("/subscribe/{list_name}", pages.subscribe, methods=["GET", "POST"]),
        Route("/api/subscribe", pages.api_subscribe, methods=["POST"]),
        Route("/confirm/{token}", pages.confirm, methods=["GET", "POST"]),
        Route("/unsubscribe/{token}", pages.unsubscribe, methods=["GET", "POST"]),
        Route("/preferences/{token}", pages.preferences, methods=["GET", "POST"]),
        *article_routes(app),
        *archive_routes(app),
        *webhook_routes(app),
    ]
    return Starlette(routes=routes, middleware=[Middleware(BodyLimit, limit=MAX_FORM_BYTES)])
