"""A SendGrid stand-in: a small server that speaks v3 Mail Send and enforces SendGrid's documented rules.

Tests send through it, and so can people (`digest dev sendgrid`). It checks what SendGrid checks (Bearer
auth; 1 to 1,000 personalizations; at most 1,000 recipients per request, each address once; ``from`` and a
``to`` per personalization; a subject; content or a template; substitutions and custom_args of strings; at
most 10 categories; every address in the spec's ``email`` format, as Prism checks it), answers 202 with an
empty body, and reports errors as SendGrid does: ``{"errors": [{"message", "field", "help"}]}`` with 400, 401
or 413.

It also speaks ``POST /v3/mail/batch`` and ``POST /v3/user/scheduled_sends``, and honours ``send_at``: a
message is *held* until its time, so a cancel before then stops it (``cancelled``), as SendGrid does.

It records what it accepted (in memory, and optionally one JSON line per request in a file), and can be
scripted to answer 429 (with ``X-RateLimit-Reset``), 500 or any status, to hang, to be slow, or to refuse
given addresses with SendGrid's 400 naming each (``refuse``): through the
constructor, `StandinState.script`, or ``POST /_standin/script`` (``GET /_standin/messages``,
``GET /_standin/stats`` and ``POST /_standin/reset`` complete the control API).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MAX_BODY_BYTES = 30 * 1024 * 1024  # SendGrid's limit on a whole request
MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
MAX_SUBSTITUTION_BYTES = 10_000
MAX_SEND_AT_AHEAD = 72 * 3600
FORBIDDEN_HEADERS = {"x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type",
                     "content-transfer-encoding", "to", "from", "subject", "reply-to", "cc", "bcc"}
# SendGrid's spec types every address ``format: email``; Prism checks it with ajv-formats' "full" email pattern,
# this one: ASCII only, so an IDN domain must come as IDNA (xn--...) and a non-ASCII local part not at all. ASCII
# mode keeps Python's case folding from letting the Kelvin sign pass for a "k", as JavaScript's /i does not.
_EMAIL = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                    r"@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?",
                    re.IGNORECASE | re.ASCII)
HELP = {"url": "https://www.twilio.com/docs/sendgrid/api-reference/mail-send/errors"}


@dataclass
class Behaviour:
    """How the stand-in answers one mail/send request.

    ``status``: answer this status instead of processing (429 adds X-RateLimit-Reset ``reset_in`` seconds
    ahead). ``hang``: seconds to wait before answering; with ``accept`` the request is validated and recorded
    first (the worst case for a client: accepted, answer lost), without it nothing is recorded.
    """

    status: int | None = None
    reset_in: float = 1.0
    hang: float = 0.0
    accept: bool = True
    message: str = "scripted failure"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Behaviour:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Received:
    """One accepted personalization: what one recipient will get."""

    request_no: int
    email: str
    name: str | None
    subject: str
    custom_args: dict[str, str]
    substitutions: dict[str, str]
    headers: dict[str, str]
    batch_id: str | None
    send_at: int | None
    received_at: float
    content: list[dict[str, str]] = field(repr=False, default_factory=list)
    reply_to: dict[str, str] | None = None

    def rendered(self, content_type: str = "text/html") -> str:
        """The content part as the recipient would see it, substitutions applied."""
        value = next((c["value"] for c in self.content if c.get("type") == content_type), "")
        for key in sorted(self.substitutions, key=len, reverse=True):
            value = value.replace(key, self.substitutions[key])
        return value


class StandinError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.errors = [{"message": message, "field": field, "help": HELP}]


class StandinState:
    """Everything the stand-in knows; thread-safe, so tests can script and inspect it while it serves."""

    def __init__(self, api_key: str = "SG.standin-key", *, record: bool = True, jsonl: Path | None = None,
                 delay: float = 0.0, behaviours: Iterable[Behaviour] = (),
                 clock: Callable[[], float] = time.time, refuse: Iterable[str] = ()) -> None:
        self.api_key = api_key
        self.record = record
        self.jsonl = jsonl
        self.clock = clock
        self._lock = threading.Lock()
        self.delay = delay
        self._script: deque[Behaviour] = deque(behaviours)
        # Addresses SendGrid's validation refuses in any request (see `refused_errors`).
        self.refused: set[str] = {e.lower() for e in refuse}
        self.received: list[Received] = []
        self.batches: dict[str, dict[str, Any]] = {}
        self.stats: Counter[str] = Counter()
        self.requests: list[dict[str, Any]] = []  # light log: request number, status, personalizations
        self.resets: list[tuple[float, int]] = []  # (when, X-RateLimit-Reset) of every 429 answered

    # --- control ------------------------------------------------------------------------------------------

    def script(self, *behaviours: Behaviour, delay: float | None = None) -> None:
        with self._lock:
            self._script.extend(behaviours)
            if delay is not None:
                self.delay = delay

    def refuse(self, *emails: str) -> None:
        """From now on, answer a request holding any of ``emails`` with SendGrid's 400 naming each one."""
        with self._lock:
            self.refused.update(e.lower() for e in emails)

    def refused_errors(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """SendGrid's documented answer to addresses it will not take: one error per address, its ``field`` the
        address's place in the request (``personalizations.3.to.0.email``), all in one 400."""
        with self._lock:
            refused = set(self.refused)
        if not refused:
            return []
        errors = []
        for i, p in enumerate(body["personalizations"]):
            for kind in ("to", "cc", "bcc"):
                for j, entry in enumerate(p.get(kind) or []):
                    if str(entry.get("email", "")).lower() in refused:
                        errors.append({"message": "Does not contain a valid address.",
                                       "field": f"personalizations.{i}.{kind}.{j}.email", "help": HELP})
        return errors

    def reset(self) -> None:
        with self._lock:
            self.refused.clear()
            self._script.clear()
            self.delay = 0.0
            self.received.clear()
            self.batches.clear()
            self.stats.clear()
            self.requests.clear()
            self.resets.clear()

    def next_behaviour(self) -> Behaviour | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    # --- inspection ---------------------------------------------------------------------------------------

    def state_of(self, message: Received, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        batch = self.batches.get(message.batch_id or "")
        if batch and batch.get("status") == "cancel" and message.send_at and message.send_at > batch["status_at"]:
            return "cancelled"
        if message.send_at and message.send_at > now:
            return "held"
        return "delivered"

    def messages(self, *, include_cancelled: bool = False) -> list[Received]:
        """Accepted messages that are or will be delivered (held ones included), in arrival order."""
        with self._lock:
            items = list(self.received)
        if include_cancelled:
            return items
        return [m for m in items if self.state_of(m) != "cancelled"]

    def count_by_email(self) -> Counter[str]:
        return Counter(m.email.lower() for m in self.messages())

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            stats = dict(self.stats)
            n = len(self.received)
        return {"stats": stats, "messages": n, "delay": self.delay, "scripted": len(self._script)}

    # --- handling -----------------------------------------------------------------------------------------

    def check_auth(self, header: str | None) -> None:
        if not header or not header.startswith("Bearer ") or not secrets.compare_digest(
                header[len("Bearer "):].encode(), self.api_key.encode()):
            raise StandinError(401, "The provided authorization grant is invalid, expired, or revoked")

    def accept(self, body: dict[str, Any]) -> tuple[int, int]:
        """Record a validated request. Returns (request number, status to answer: 202, or 200 in sandbox)."""
        sandbox = bool(((body.get("mail_settings") or {}).get("sandbox_mode") or {}).get("enable"))
        now = self.clock()
        with self._lock:
            self.stats["mail_send_requests_accepted"] += 1
            request_no = self.stats["mail_send_requests_accepted"]
            if sandbox:
                self.stats["sandbox_requests"] += 1
                return request_no, 200
            personalizations = body["personalizations"]
            self.stats["personalizations"] += len(personalizations)
            batch_id = body.get("batch_id")
            if batch_id:
                self.batches[batch_id]["used"] = True
            self.requests.append({"request_no": request_no, "personalizations": len(personalizations),
                                  "batch_id": batch_id, "send_at": body.get("send_at")})
            if self.record:
                top_headers = dict(body.get("headers") or {})
                for p in personalizations:
                    to = p["to"][0]
                    self.received.append(Received(
                        request_no=request_no, email=to["email"], name=to.get("name"),
                        subject=p.get("subject") or body.get("subject") or "",
                        custom_args={**(p.get("custom_args") or {})},
                        substitutions=dict(p.get("substitutions") or {}),
                        headers={**top_headers, **(p.get("headers") or {})},
                        batch_id=batch_id, send_at=p.get("send_at") or body.get("send_at"),
                        received_at=now, content=body.get("content") or [], reply_to=body.get("reply_to"),
                    ))
        if self.jsonl is not None:
            line = {"received_at": now, "request_no": request_no, "batch_id": body.get("batch_id"),
                    "send_at": body.get("send_at"), "from": body.get("from"), "subject": body.get("subject"),
                    "categories": body.get("categories"),
                    "personalizations": [{"to": p.get("to"), "custom_args": p.get("custom_args"),
                                          "headers": p.get("headers")} for p in body["personalizations"]]}
            with open(self.jsonl, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(line) + "\n")
        return request_no, 202

    def new_batch(self) -> str:
        batch_id = secrets.token_urlsafe(24)
        with self._lock:
            self.batches[batch_id] = {"created": self.clock(), "status": None, "status_at": None, "used": False}
            self.stats["batches_created"] += 1
        return batch_id

    def set_batch_status(self, batch_id: str, status: str) -> None:
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                raise StandinError(400, "batch id is invalid", "batch_id")
            if batch["status"] is None or batch["status"] != status:
                batch["status"] = status
                batch["status_at"] = self.clock()
            self.stats[f"scheduled_sends_{status}"] += 1


def validate(body: Any, batches: dict[str, dict[str, Any]], now: float) -> None:
    """Raise `StandinError` for the first rule of SendGrid's v3 Mail Send the body breaks."""
    if not isinstance(body, dict):
        raise StandinError(400, "The request body must be a JSON object", None)
    _validate_from(body)
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        raise StandinError(400, "The personalizations field is required and must have at least one "
                           "personalization.", "personalizations")
    if len(personalizations) > MAX_PERSONALIZATIONS:
        raise StandinError(400, "The personalizations field may not have more than 1000 items.",
                           "personalizations")
    seen: set[str] = set()
    total = 0
    has_subject = isinstance(body.get("subject"), str) and bool(body.get("subject"))
    template = bool(body.get("template_id"))
    for i, p in enumerate(personalizations):
        where = f"personalizations.{i}"
        if not isinstance(p, dict):
            raise StandinError(400, "Each personalization must be an object.", where)
        to = p.get("to")
        if not isinstance(to, list) or not to:
            raise StandinError(400, "The to array is required for all personalization objects, and must have "
                               "at least one email object with a valid email address.", f"{where}.to")
        for kind in ("to", "cc", "bcc"):
            entries = p.get(kind) or []
            if not isinstance(entries, list):
                raise StandinError(400, f"The {kind} field must be an array.", f"{where}.{kind}")
            for j, entry in enumerate(entries):
                email = entry.get("email") if isinstance(entry, dict) else None
                if not isinstance(email, str) or not _EMAIL.fullmatch(email):
                    raise StandinError(400, "Does not contain a valid address.", f"{where}.{kind}.{j}.email")
                key = email.lower()
                if key in seen:
                    raise StandinError(400, "Each email address in the personalization block should be unique "
                                       "between to, cc, and bcc. We found the first duplicate instance of "
                                       f"[{email}] in the {where}.{kind} field.", f"{where}.{kind}")
                seen.add(key)
                total += 1
        if total > MAX_RECIPIENTS:
            raise StandinError(400, "The total number of recipients must be no more than 1000.", "personalizations")
        if not has_subject and not template and not (isinstance(p.get("subject"), str) and p.get("subject")):
            raise StandinError(400, "The subject is required. You can get around this requirement if you use a "
                               "template with a subject defined or if every single personalization has a subject "
                               "defined.", "subject")
        subs = p.get("substitutions")
        if subs is not None:
            if not isinstance(subs, dict) or not all(isinstance(v, str) for v in subs.values()):
                raise StandinError(400, "Substitutions must be an object of strings.", f"{where}.substitutions")
            size = sum(len(k.encode()) + len(v.encode()) for k, v in subs.items())
            if size > MAX_SUBSTITUTION_BYTES:
                raise StandinError(400, "The total size of substitutions may not exceed 10000 bytes per "
                                   "personalization object.", f"{where}.substitutions")
        args = p.get("custom_args")
        if args is not None and (not isinstance(args, dict) or not all(isinstance(v, str) for v in args.values())):
            raise StandinError(400, "Custom args must be an object of strings.", f"{where}.custom_args")
        _validate_headers(p.get("headers"), f"{where}.headers")
        if p.get("send_at") is not None:
            _validate_send_at(p["send_at"], now, f"{where}.send_at")
    if "custom_args" in body and not isinstance(body["custom_args"], str):
        # SendGrid's published spec types the top-level field as a string; per-recipient args go in
        # personalizations (and SendGrid's validator, like Prism, rejects anything else here).
        raise StandinError(400, "custom_args at the top level must be a string.", "custom_args")
    _validate_content(body, template)
    _validate_headers(body.get("headers"), "headers")
    categories = body.get("categories")
    if categories is not None and (
            not isinstance(categories, list) or len(categories) > 10
            or not all(isinstance(c, str) and len(c) <= 255 for c in categories)
            or len(set(categories)) != len(categories)):
        raise StandinError(400, "Categories must be at most 10 unique strings of at most 255 characters.",
                           "categories")
    if body.get("send_at") is not None:
        _validate_send_at(body["send_at"], now, "send_at")
    batch_id = body.get("batch_id")
    if batch_id is not None and (not isinstance(batch_id, str) or batch_id not in batches):
        raise StandinError(400, "The batch id is invalid.", "batch_id")
    reply_to = body.get("reply_to")
    if reply_to is not None and (not isinstance(reply_to, dict)
                                 or not _EMAIL.fullmatch(str(reply_to.get("email")))):
        raise StandinError(400, "The reply_to email does not contain a valid address.", "reply_to.email")


def _validate_from(body: dict[str, Any]) -> None:
    sender = body.get("from")
    if not isinstance(sender, dict) or not sender.get("email"):
        raise StandinError(400, "The from object must be provided for every email send. It is an object that "
                           "requires an email parameter, but may also contain a name parameter.", "from")
    if not isinstance(sender["email"], str) or not _EMAIL.fullmatch(sender["email"]):
        raise StandinError(400, "The from email does not contain a valid address.", "from.email")


def _validate_content(body: dict[str, Any], template: bool) -> None:
    content = body.get("content")
    if content is None:
        if template:
            return
        raise StandinError(400, "Unless a valid template_id is provided, the content parameter is required. There "
                           "must be at least one defined content block.", "content")
    if not isinstance(content, list) or not content:
        raise StandinError(400, "The content parameter must be an array with at least one item.", "content")
    for i, part in enumerate(content):
        if not isinstance(part, dict) or not part.get("type") or not isinstance(part.get("value"), str) \
                or not part["value"]:
            raise StandinError(400, "The content value must be a string at least one character in length.",
                               f"content.{i}.value")
    types = [part["type"] for part in content]
    if "text/plain" in types and types.index("text/plain") != 0:
        raise StandinError(400, "If present, text/plain content must be first, followed by text/html, followed "
                           "by any other content.", "content.0.type")


def _validate_headers(headers: Any, where: str) -> None:
    if headers is None:
        return
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise StandinError(400, "Headers must be an object of strings.", where)
    for name in headers:
        if name.lower() in FORBIDDEN_HEADERS:
            raise StandinError(400, f"The header {name} may not be overridden.", f"{where}.{name}")


def _validate_send_at(value: Any, now: float, where: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise StandinError(400, "send_at must be a Unix timestamp (integer).", where)
    if value > now + MAX_SEND_AT_AHEAD:
        raise StandinError(400, "send_at may not be more than 72 hours in the future.", where)


async def _sleep(seconds: float) -> bool:
    """Sleep, or return False when the server shuts down meanwhile (a hung request is then simply dropped)."""
    try:
        await asyncio.sleep(seconds)
        return True
    except asyncio.CancelledError:
        return False


def _error_response(exc: StandinError) -> JSONResponse:
    return JSONResponse({"errors": exc.errors}, status_code=exc.status)


def create_app(state: StandinState) -> Starlette:
    """The stand-in as an ASGI app (serve it with uvicorn, or `StandinServer` in a thread)."""

    async def mail_send(request: Request) -> Response:
        state.stats["mail_send_requests"] += 1
        try:
            state.check_auth(request.headers.get("authorization"))
            raw = await request.body()
            if len(raw) > MAX_BODY_BYTES:
                raise StandinError(413, "The JSON payload you have included in your request is too large.", None)
            behaviour = state.next_behaviour()
            if behaviour is not None and behaviour.status is not None:
                state.stats[f"scripted_{behaviour.status}"] += 1
                if behaviour.hang and not await _sleep(behaviour.hang):
                    return Response(status_code=503)
                headers = {}
                if behaviour.status == 429:
                    reset = int(state.clock() + behaviour.reset_in + 0.999)
                    state.resets.append((state.clock(), reset))
                    headers = {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0",
                               "X-RateLimit-Reset": str(reset)}
                return JSONResponse({"errors": [{"message": behaviour.message, "field": None, "help": HELP}]},
                                    status_code=behaviour.status, headers=headers)
            if behaviour is not None and not behaviour.accept:
                state.stats["hung_unrecorded"] += 1
                await _sleep(behaviour.hang)
                return JSONResponse({"errors": [{"message": "timed out", "field": None, "help": HELP}]},
                                    status_code=503)
            try:
                body = json.loads(raw)
            except ValueError:
                raise StandinError(400, "Bad Request: the body is not valid JSON", None) from None
            validate(body, state.batches, state.clock())
            refused = state.refused_errors(body)
            if refused:
                state.stats["status_400"] += 1
                state.stats["refused_addresses"] += len(refused)
                return JSONResponse({"errors": refused}, status_code=400)
            _, status = state.accept(body)
            if behaviour is not None and behaviour.hang:
                state.stats["hung_after_accept"] += 1
                await _sleep(behaviour.hang)
            if state.delay:
                await _sleep(state.delay)
            return Response(status_code=status, headers={"X-Message-Id": secrets.token_urlsafe(16)})
        except StandinError as exc:
            state.stats[f"status_{exc.status}"] += 1
            return _error_response(exc)

    async def create_batch(request: Request) -> Response:
        try:
            state.check_auth(request.headers.get("authorization"))
        except StandinError as exc:
            return _error_response(exc)
        return JSONResponse({"batch_id": state.new_batch()}, status_code=201)

    async def get_batch(request: Request) -> Response:
        try:
            state.check_auth(request.headers.get("authorization"))
            batch_id = request.path_params["batch_id"]
            if batch_id not in state.batches:
                raise StandinError(400, "invalid batch id", "batch_id")
        except StandinError as exc:
            return _error_response(exc)
        return JSONResponse({"batch_id": batch_id})

    async def scheduled_sends(request: Request) -> Response:
        try:
            state.check_auth(request.headers.get("authorization"))
            try:
                body = json.loads(await request.body())
            except ValueError:
                raise StandinError(400, "Bad Request: the body is not valid JSON", None) from None
            batch_id, status = body.get("batch_id"), body.get("status")
            if status not in ("cancel", "pause"):
                raise StandinError(400, "status must be cancel or pause", "status")
            if not isinstance(batch_id, str):
                raise StandinError(400, "batch_id is required", "batch_id")
            state.set_batch_status(batch_id, status)
        except StandinError as exc:
            return _error_response(exc)
        return JSONResponse({"batch_id": batch_id, "status": status}, status_code=201)

    async def control_script(request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        state.script(*[Behaviour.from_json(b) for b in body.get("behaviours", [])], delay=body.get("delay"))
        state.refuse(*[str(e) for e in body.get("refuse", [])])
        return JSONResponse(state.snapshot())

    async def control_messages(request: Request) -> Response:
        now = state.clock()
        return JSONResponse([{
            "request_no": m.request_no, "email": m.email, "name": m.name, "subject": m.subject,
            "custom_args": m.custom_args, "headers": m.headers, "batch_id": m.batch_id, "send_at": m.send_at,
            "state": state.state_of(m, now)} for m in state.messages(include_cancelled=True)])

    async def control_stats(request: Request) -> Response:
        return JSONResponse(state.snapshot())

    async def control_reset(request: Request) -> Response:
        state.reset()
        return JSONResponse(state.snapshot())

    return Starlette(routes=[
        Route("/v3/mail/send", mail_send, methods=["POST"]),
        Route("/v3/mail/batch", create_batch, methods=["POST"]),
        Route("/v3/mail/batch/{batch_id}", get_batch, methods=["GET"]),
        Route("/v3/user/scheduled_sends", scheduled_sends, methods=["POST"]),
        Route("/_standin/script", control_script, methods=["POST"]),
        Route("/_standin/messages", control_messages, methods=["GET"]),
        Route("/_standin/stats", control_stats, methods=["GET"]),
        Route("/_standin/reset", control_reset, methods=["POST"]),
    ])


class StandinServer:
    """The stand-in served by uvicorn in a background thread, on 127.0.0.1 and a free port by default."""

    def __init__(self, state: StandinState | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self.state = state or StandinState()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        config = uvicorn.Config(create_app(self.state), log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=1, access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="sendgrid-standin", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the SendGrid stand-in did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._server.force_exit = True
        self._thread.join(timeout=5)
        self._sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
