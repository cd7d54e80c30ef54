"""The editor's desk in the preview: shape the upcoming edition story by story, and the password gate.

Routes (mounted by ``digest.web.preview``):

- ``GET /l/{list}/{date}/desk``: the desk's part of the page (the page includes it; live reload fetches it);
- ``POST /l/{list}/{date}/desk/{action}``: pin, unpin, leave-out, move-up, move-down, add, retract, approve, and
  note (the editor's note, through ``digest.editorial.note.set_note``, the function `digest editions note` uses).
  Every POST carries the page's signed CSRF token and must come from the preview's own page; the change is
  made by ``digest.desk.actions`` as the configured ``desk_editor``; the page comes back through a redirect
  and the other open tabs reload through the store poll. "retract" (Leave out everywhere) first answers with
  a page asking to confirm.

``PasswordGate`` asks for ``preview_password`` (HTTP basic, any user name, compared in constant time) on every
request; the preview refuses to listen beyond loopback without it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from jinja2 import Environment
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from digest.config import Settings
from digest.desk import actions, audit
from digest.desk.actions import DeskChange, DeskRefused
from digest.desk.settings import DeskSettings
from digest.desk.view import DeskView, desk_view
from digest.editorial.note import NoteChange, set_note
from digest.errors import DigestError, NotFound
from digest.store.db import Store

if TYPE_CHECKING:
    from digest.web.preview import PreviewState

ACTIONS = ("pin", "unpin", "leave-out", "move-up", "move-down", "add", "retract", "approve", "note")
# Actions about the whole edition, not one article.
EDITION_ACTIONS = ("approve", "note")
REALM = 'Basic realm="digest preview", charset="UTF-8"'


class PasswordGate:
    """HTTP basic authentication with one password (the user name is not checked) for the whole preview."""

    def __init__(self, app: ASGIApp, password: str) -> None:
        if not password:
            raise ValueError("PasswordGate needs a password")
        self.app = app
        self.password = password.encode("utf-8")

    def allows(self, authorization: str) -> bool:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        _, sep, given = decoded.partition(b":")
        return bool(sep) and hmac.compare_digest(given, self.password)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.allows(Headers(scope=scope).get("authorization", "")):
            response = PlainTextResponse("digest preview: password required\n", status_code=401,
                                         headers={"WWW-Authenticate": REALM, "Cache-Control": "no-store"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def desk_fingerprint(store: Store) -> str:
    with store.session() as session:
        return audit.fingerprint(session)


def load_view(settings: Settings, state: PreviewState, list_name: str, day: date) -> DeskView:
    with state.app.store.session() as session:
        return desk_view(session, settings, list_name, day, now=datetime.now(UTC))


def apply(state: PreviewState, list_name: str, day: date, action: str, article_id: str, reason: str,
          note: str = "") -> DeskChange | NoteChange:
    """Make one desk change as the configured editor (runs in a worker thread)."""
    settings = state.settings()
    by = DeskSettings.from_settings(settings).editor
    now = datetime.now(UTC)
    if action == "retract":
        return actions.leave_out_everywhere(state.app, list_name, day, article_id, by=by, now=now)
    with state.app.store.session() as session:
        if action == "pin":
            return actions.pin(session, settings, list_name, day, article_id, by=by, now=now)
        if action == "unpin":
            return actions.unpin(session, settings, list_name, day, article_id, by=by, now=now)
        if action == "leave-out":
            return actions.leave_out(session, settings, list_name, day, article_id, reason=reason, by=by, now=now)
        if action in ("move-up", "move-down"):
            return actions.move(session, settings, list_name, day, article_id,
                                "up" if action == "move-up" else "down", by=by, now=now)
        if action == "add":
            return actions.add(session, settings, list_name, day, article_id, by=by, now=now)
        if action == "approve":
            return actions.approve(session, settings, list_name, day, by=by, now=now)
        if action == "note":
            return set_note(session, settings, list_name, day, note, by=by, now=now)
    raise NotFound(f"desk: no action {action!r}")


def desk_routes(state: PreviewState, pages: Environment, *, allowed: Callable[[Request, str], bool],
                page: Callable[..., HTMLResponse], edition_path: Callable[[str, date], str],
                parse_date: Callable[[str], date]) -> list[Route]:
    """The desk's routes; the preview passes its own CSRF check, page renderer and URL helpers."""

    def query(request: Request) -> str:
        subscriber = request.query_params.get("subscriber")
        return f"?{urlencode({'subscriber': subscriber})}" if subscriber else ""

    async def desk_part(request: Request) -> Response:
        list_name = request.path_params["list"]
        try:
            day = parse_date(request.path_params["date"])
            view = await run_in_threadpool(load_view, state.settings(), state, list_name, day)
        except DigestError as exc:
            return page(pages, "desk.html", desk=None, error=str(exc), base="", query="", csrf="")
        return page(pages, "desk.html", desk=view, error=None, base=edition_path(list_name, day),
                    query=query(request), csrf=state.csrf_token())

    async def desk_post(request: Request) -> Response:
        wants_json = "application/json" in request.headers.get("accept", "")
        action = request.path_params["action"]
        list_name = request.path_params["list"]

        def refuse(message: str, status: int) -> Response:
            if wants_json:
                return JSONResponse({"error": message}, status_code=status)
            return page(pages, "error.html", status=status, message=message, path=request.url.path)

        form = await request.form()
        if not allowed(request, str(form.get("csrf") or "")):
            return refuse("desk: the form is stale or did not come from this preview; reload the page", 403)
        if action not in ACTIONS:
            return refuse(f"desk: no action {action!r}", 404)
        article_id = str(form.get("article") or "").strip()
        if action not in EDITION_ACTIONS and not article_id:
            return refuse(f"desk: {action} needs an article", 400)
        try:
            day = parse_date(request.path_params["date"])
        except DigestError as exc:
            return refuse(str(exc), 404)
        back = edition_path(list_name, day) + query(request)
        if action == "retract" and form.get("confirm") != "yes":
            return page(pages, "desk_confirm.html", article_id=article_id, csrf=state.csrf_token(), back=back,
                        action=f"{edition_path(list_name, day)}/desk/retract{query(request)}")
        try:
            change = await run_in_threadpool(apply, state, list_name, day, action, article_id,
                                             str(form.get("reason") or ""), str(form.get("note") or ""))
        except DeskRefused as exc:
            return refuse(str(exc), 409)
        except NotFound as exc:
            return refuse(str(exc), 404)
        except DigestError as exc:
            return refuse(str(exc), 400)
        # No publish here: this tab reloads through the redirect, and the store poll (``desk_fingerprint``) tells
        # every other tab within a poll interval, as it does for a change made with a command.
        if wants_json:
            return JSONResponse({**change.to_json(), "at": change.at.isoformat()})
        return RedirectResponse(back, 303)

    base = "/l/{list}/{date}"
    return [Route(base + "/desk", desk_part), Route(base + "/desk/{action}", desk_post, methods=["POST"])]
