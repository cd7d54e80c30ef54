"""`digest preview`: a local web app to look at editions before they go out.

Routes (all read-only except "send test" and the editor's desk):

- ``/`` and ``/l/{list}/{date}``: the viewer (editions by list, the email in an iframe, checks, send test);
- ``/l/{list}/{date}/{html,text,source,headers}``: what the iframe shows (``?subject=N``: with the edition's Nth
  subject under test); ``/panel`` and ``/checks.json``: checks;
- ``POST /l/{list}/{date}/send-test``: one test message through the configured backend (no delivery rows);
- ``/l/{list}/{date}/desk`` and ``POST .../desk/{action}``: the editor's desk (``digest.web.preview_desk``);
- ``/events``: Server-Sent Events telling open tabs to reload when templates, config or articles change (the
  editions the tabs look at are rendered again on the same event: ``digest.web.preview_warm``);
- ``/editions.json``: every list with its upcoming and past editions.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from datetime import date
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, urlencode, urlsplit

import anyio
from email_validator import EmailNotValidError, validate_email
from itsdangerous import BadSignature, URLSafeTimedSerializer
from jinja2 import Environment, FileSystemLoader
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import digest
from digest.app import App
from digest.audience import subscribers
from digest.audience.lists import get_list
from digest.config import Settings, load_settings
from digest.errors import ConfigError, DigestError, NotFound
from digest.send import transactional
from digest.web import preview_editions as editions
from digest.web.preview_checks import SpamChecker, run_checks
from digest.web.preview_desk import PasswordGate, desk_fingerprint, desk_routes, load_view
from digest.web.preview_frame import frame_html, inject_head
from digest.web.preview_live import (
    FAST_RELOAD,
    ChangeHub,
    FileWatcher,
    ReloadTuning,
    articles_fingerprint,
    poll_articles,
)
from digest.web.preview_warm import EditionKey, WarmEditions
from digest.web.preview_web import preview_archive, preview_web_version

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
PAGES_DIR = HERE / "templates" / "preview"
BUILTIN_TEMPLATES = Path(digest.__file__).parent / "templates"
CSRF_SALT = "digest.preview.send-test"
CSRF_MAX_AGE = 12 * 3600
VIEWS = ("html", "text", "source", "headers")

# The app's own pages load only their own script and style; the email iframe may load remote images (as a mail
# client would) but never run a script, whatever an article smuggled in.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "frame-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'self'")
EMAIL_CSP = "script-src 'none'; object-src 'none'; form-action 'none'; frame-ancestors 'self'"


class PreviewState:
    """What the running preview holds: the app (settings re-read when the config file changes) and helpers."""

    def __init__(self, app: App, *, spam: SpamChecker | None = None) -> None:
        self.app = app
        self.hub = ChangeHub()
        self.spam = spam if spam is not None else SpamChecker()
        # Values set by the environment when the preview started win over the file on every re-read too.
        self._pinned = {k: app.settings.values[k] for k in app.settings.overrides}
        self._config_stamp = self._stamp()
        self.config_error: str | None = None
        secret = app.settings.secret_key or secrets.token_hex(32)  # tokens only need to outlive this process
        self.csrf = URLSafeTimedSerializer(secret, salt=CSRF_SALT)

    @property
    def config_path(self) -> Path:
        settings = self.app.settings
        return settings.source if settings.source is not None else settings.project_dir / "digest.toml"

    def _stamp(self) -> int | None:
        try:
            return self.config_path.stat().st_mtime_ns
        except OSError:
            return None

    def settings(self) -> Settings:
        """Current settings; re-reads the config file when it changed. A broken file keeps the last good one."""
        stamp = self._stamp()
        if stamp != self._config_stamp:
            self._config_stamp = stamp
            old = self.app.settings
            try:
                path = self.config_path if stamp is not None else None
                new = load_settings(path, cwd=old.project_dir)
                new = new.replace(**{k: v for k, v in self._pinned.items() if k not in new.overrides})
                new.overrides.update({k: old.overrides[k] for k in self._pinned})
            except DigestError as exc:
                self.config_error = str(exc)
            else:
                self.config_error = None
                if new.resolved_database_url != old.resolved_database_url:
                    self.app.close()
                self.app.settings = new
        return self.app.settings

    def csrf_token(self) -> str:
        return str(self.csrf.dumps("send-test"))

    def csrf_ok(self, token: str) -> bool:
        try:
            return bool(self.csrf.loads(token, max_age=CSRF_MAX_AGE) == "send-test")
        except BadSignature:
            return False


def _pages() -> Environment:
    env = Environment(loader=FileSystemLoader(str(PAGES_DIR)), autoescape=True, trim_blocks=True,
                      lstrip_blocks=True)
    env.globals["urlencode"] = lambda data: urlencode({k: v for k, v in data.items() if v})
    return env


def _page(env: Environment, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = env.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": PAGE_CSP,
                                                           "Cache-Control": "no-store"})


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise NotFound(f"date: {value!r} is not a date (YYYY-MM-DD)") from None


def _edition_path(list_name: str, day: date) -> str:
    return f"/l/{quote(list_name, safe='')}/{day.isoformat()}"


def _same_origin(request: Request) -> bool:
    """A browser always sends Origin (or at least Referer) on a cross-site form POST; both must be this host."""
    host = request.headers.get("host", "")
    for header in ("origin", "referer"):
        value = request.headers.get(header)
        if value:
            return urlsplit(value).netloc == host
    return True  # no browser involved (curl, scripts): the signed token alone decides


LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


def create_preview_app(app: App, *, live: bool = True, poll_interval: float = 1.0,
                       spam: SpamChecker | None = None,
                       allowed_hosts: Sequence[str] = LOOPBACK_HOSTS, password: str = "",
                       reload: ReloadTuning = FAST_RELOAD) -> Starlette:
    """The preview as an ASGI app. ``live`` starts the file watcher and article poller (needs the lifespan).

    ``allowed_hosts`` are the Host headers answered: a web page the user visits could otherwise point its own
    domain at 127.0.0.1 (DNS rebinding) and read editions and subscriber addresses through the browser.
    ``password`` (``preview_password``) is asked for on every request; answering any host requires one.
    ``reload``: how a change reaches the tabs (``LEGACY_RELOAD`` is the slower path the benchmark compares with).
    """
    if "*" in allowed_hosts and not password:
        raise ConfigError("preview_password: required to listen beyond this machine (set DIGEST_PREVIEW_PASSWORD)")
    state = PreviewState(app, spam=spam)
    pages = _pages()

    def build_key(key: EditionKey, to: str | None = None) -> editions.PreviewEdition:
        return editions.build_edition(state.settings(), state.app.store, key.list_name, key.day,
                                      subscriber=key.subscriber, to=to, subject_index=key.subject_index)

    warm = WarmEditions(build_key)
    if reload.warm:
        state.hub.on_publish(warm.changed)

    def store_fingerprint() -> tuple[int, str | None]:
        state.settings()
        count, newest = articles_fingerprint(state.app.store)
        return count, f"{newest} {desk_fingerprint(state.app.store)}"

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if not live:
            yield
            return
        stop = anyio.Event()
        settings = state.settings()
        watcher = FileWatcher(state.hub, settings.path(settings.templates_dir), state.config_path,
                              fallback_templates=BUILTIN_TEMPLATES, tuning=reload)
        async with anyio.create_task_group() as group:
            group.start_soon(watcher.run, stop)
            group.start_soon(poll_articles, state.hub, store_fingerprint, stop, poll_interval)
            try:
                yield
            finally:
                stop.set()
                state.hub.close()
                group.cancel_scope.cancel()

    # --- helpers ------------------------------------------------------------------------------------------

    def load_overview() -> list[editions.ListOverview]:
        settings = state.settings()
        with state.app.store.session() as session:
            return editions.overview(session, settings)

    def viewer_context(list_name: str, day: date, subscriber: str | None) -> dict[str, Any]:
        settings = state.settings()
        with state.app.store.session() as session:
            lists = editions.overview(session, settings)
            list_row = get_list(session, list_name)
            choices = editions.subscriber_choices(session, list_row)
            if subscriber:
                row = subscribers.find(session, list_row, subscriber)
                if row is None:
                    raise NotFound(f"subscriber: {subscriber!r} is not on the list {list_name!r}")
                if all(email.lower() != row.email.lower() for email, _ in choices):
                    choices.insert(0, (row.email, row.email))  # beyond the picker's first page
        current = next(o for o in lists if o.name == list_name)
        return {"lists": lists, "current": current, "list_name": list_name, "day": day,
                "subscriber": subscriber or "", "choices": choices, "base": _edition_path(list_name, day),
                "config_error": state.config_error, "csrf": state.csrf_token(), "backend": settings.backend,
                "version": state.hub.version, "swap": reload.swap}

    async def build(request: Request, *, to: str | None = None) -> editions.PreviewEdition:
        list_name = request.path_params["list"]
        day = _parse_date(request.path_params["date"])
        subscriber = request.query_params.get("subscriber") or None
        raw_subject = request.query_params.get("subject") or ""
        if raw_subject and not raw_subject.isdigit():
            raise NotFound(f"subject: {raw_subject!r} is not a subject's number")
        subject_index = int(raw_subject) - 1 if raw_subject else None
        key = EditionKey(list_name, day, subscriber, subject_index)
        if to is not None:  # a test message: rendered for its address, never from the renders made ahead
            return await run_in_threadpool(build_key, key, to)
        # Only a fetch answering a change event (``live=1``, from an open tab) may take the render made ahead for
        # that change: a page that just opened could be newer than the last change it saw.
        raw_version = request.query_params.get("v") or ""
        live = request.query_params.get("live") == "1" and raw_version.isdigit()
        return await warm.get(key, int(raw_version) if live else None)

    def error_response(request: Request, exc: DigestError, *, plain: bool = False) -> Response:
        status = 404 if isinstance(exc, NotFound) else 500
        if plain:
            return PlainTextResponse(f"Error: {exc}\n", status_code=status)
        return _page(pages, "error.html", status=status, message=str(exc), path=request.url.path)

    # --- pages --------------------------------------------------------------------------------------------

    async def index(request: Request) -> Response:
        try:
            lists = await run_in_threadpool(load_overview)
        except DigestError as exc:
            return error_response(request, exc)
        first = lists[0]
        return await viewer_page(request, first.name, first.upcoming)

    async def list_page(request: Request) -> Response:
        name = request.path_params["list"]
        try:
            lists = await run_in_threadpool(load_overview)
            match = next((o for o in lists if o.name == name), None)
            if match is None:
                raise NotFound(f"no list named {name!r}")
        except DigestError as exc:
            return error_response(request, exc)
        query = request.url.query
        return RedirectResponse(_edition_path(name, match.upcoming) + (f"?{query}" if query else ""), 303)

    async def edition_page(request: Request) -> Response:
        try:
            day = _parse_date(request.path_params["date"])
        except DigestError as exc:
            return error_response(request, exc)
        return await viewer_page(request, request.path_params["list"], day)

    async def viewer_page(request: Request, list_name: str, day: date) -> Response:
        subscriber = request.query_params.get("subscriber") or None
        try:
            context = await run_in_threadpool(viewer_context, list_name, day, subscriber)
        except DigestError as exc:
            return error_response(request, exc)
        context["sent_to"] = request.query_params.get("sent") or ""
        context["query"] = f"?{urlencode({'subscriber': subscriber})}" if subscriber else ""
        try:
            context["desk"], context["error"] = await run_in_threadpool(load_view, state.settings(), state,
                                                                        list_name, day), None
        except DigestError as exc:
            context["desk"], context["error"] = None, str(exc)
        return _page(pages, "viewer.html", **context)

    async def view_html(request: Request) -> Response:
        try:
            edition = await build(request)
        except DigestError as exc:
            return error_response(request, exc)
        dark = request.query_params.get("dark") in {"1", "true", "on"}
        return HTMLResponse(frame_html(edition.html, dark=dark),
                            headers={"Content-Security-Policy": EMAIL_CSP, "Cache-Control": "no-store"})

    async def view_web(request: Request) -> Response:
        which = request.url.path.rsplit("/", 1)[1]
        try:
            day = _parse_date(request.path_params["date"])
            maker = preview_web_version if which == "web" else preview_archive
            html = await run_in_threadpool(maker, state.settings(), state.app.store, request.path_params["list"], day)
        except DigestError as exc:
            return error_response(request, exc)
        dark = request.query_params.get("dark") in {"1", "true", "on"}
        page = frame_html(html, dark=dark) if which == "web" else inject_head(html, '<base target="_blank">')
        return HTMLResponse(page, headers={"Content-Security-Policy": EMAIL_CSP, "Cache-Control": "no-store"})

    async def view_text(request: Request) -> Response:
        try:
            edition = await build(request)
        except DigestError as exc:
            return error_response(request, exc, plain=True)
        return PlainTextResponse(edition.text, headers={"Cache-Control": "no-store"})

    async def view_source(request: Request) -> Response:
        try:
            edition = await build(request)
        except DigestError as exc:
            return error_response(request, exc, plain=True)
        # Sent as text so the browser shows the raw RFC 5322 bytes instead of offering a download.
        return PlainTextResponse(edition.eml.decode("utf-8", "replace"), headers={"Cache-Control": "no-store"})

    async def view_headers(request: Request) -> Response:
        try:
            edition = await build(request)
        except DigestError as exc:
            return error_response(request, exc)
        headers = [(name, str(value)) for name, value in edition.headers.items()]
        return _page(pages, "headers.html", headers=headers, edition=edition)

    async def checks_data(request: Request) -> tuple[editions.PreviewEdition, list[Any]]:
        edition = await build(request)
        settings = state.settings()
        checks = await run_in_threadpool(run_checks, edition.html, edition.eml,
                                         max_html_bytes=int(settings.max_html_bytes), spam=state.spam)
        return edition, checks

    async def panel(request: Request) -> Response:
        try:
            edition, checks = await checks_data(request)
        except DigestError as exc:
            return _page(pages, "panel.html", status=200, error=str(exc), edition=None, checks=[],
                         config_error=state.config_error, version=state.hub.version)
        return _page(pages, "panel.html", edition=edition, checks=checks, error=None,
                     config_error=state.config_error, version=state.hub.version)

    async def checks_json(request: Request) -> Response:
        try:
            edition, checks = await checks_data(request)
        except DigestError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404 if isinstance(exc, NotFound) else 500)
        return JSONResponse({"edition": edition.to_json(), "checks": [c.to_json() for c in checks]})

    async def editions_json(request: Request) -> Response:
        try:
            lists = await run_in_threadpool(load_overview)
        except DigestError as exc:
            return JSONResponse({"error": str(exc)}, status_code=500)
        return JSONResponse({"lists": [o.to_json() for o in lists]})

    async def send_test(request: Request) -> Response:
        wants_json = "application/json" in request.headers.get("accept", "")

        def refuse(message: str, status: int) -> Response:
            if wants_json:
                return JSONResponse({"error": message}, status_code=status)
            return _page(pages, "error.html", status=status, message=message, path=request.url.path)

        form = await request.form()
        token = str(form.get("csrf") or "")
        if not _same_origin(request) or not state.csrf_ok(token):
            return refuse("send test: the form is stale or did not come from this preview; reload the page", 403)
        raw_to = str(form.get("to") or "").strip()
        try:
            to = validate_email(raw_to, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            return refuse(f"to: {raw_to!r} is not a valid email address ({exc})", 400)
        try:
            edition = await build(request, to=to)
            # With the default policy the parser builds an EmailMessage, which send_message takes.
            message = cast(EmailMessage, message_from_bytes(edition.eml, policy=default_policy))
            subject = str(message.get("Subject", ""))
            del message["Subject"]
            message["Subject"] = f"[Test] {subject}"
            settings = state.settings()
            provider_id = await run_in_threadpool(transactional.send_message, settings, message)
        except DigestError as exc:
            return refuse(f"send test: {exc}", 502 if not isinstance(exc, NotFound) else 404)
        log.info("preview: test of %s %s sent to %s", edition.list_name, edition.date, to)
        if wants_json:
            return JSONResponse({"sent_to": to, "id": provider_id, "subject": f"[Test] {subject}"})
        params = {"sent": to}
        if request.query_params.get("subscriber"):
            params["subscriber"] = request.query_params["subscriber"]
        return RedirectResponse(f"{_edition_path(edition.list_name, edition.date)}?{urlencode(params)}", 303)

    async def events(request: Request) -> Response:
        return StreamingResponse(state.hub.stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    base = "/l/{list}/{date}"
    routes = [
        Route("/", index),
        Route("/editions.json", editions_json),
        Route("/events", events),
        Route("/l/{list}", list_page),
        Route(base, edition_page),
        Route(base + "/html", view_html),
        Route(base + "/text", view_text),
        Route(base + "/web", view_web),
        Route(base + "/archive", view_web),
        Route(base + "/source", view_source),
        Route(base + "/headers", view_headers),
        Route(base + "/panel", panel),
        Route(base + "/checks.json", checks_json),
        Route(base + "/send-test", send_test, methods=["POST"]),
        *desk_routes(state, pages, allowed=lambda request, token: _same_origin(request) and state.csrf_ok(token),
                     page=_page, edition_path=_edition_path, parse_date=_parse_date),
        Mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static"),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))]
    if password:
        middleware.insert(0, Middleware(PasswordGate, password=password))
    starlette = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    starlette.state.preview = state
    starlette.state.warm = warm
    return starlette
