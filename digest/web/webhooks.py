"""Provider webhooks mounted on `digest serve`: POST /webhooks/sendgrid.

Order matters here. Headers are checked before the body is read; the body is read in chunks and abandoned as
soon as it passes webhook_max_body_bytes; the signature is verified before a byte of it is parsed; and only a
verified, parsed batch reaches the store, in one transaction. A refused request changes nothing.

SendGrid can compress its posts (``Content-Encoding: gzip``). The limit then holds for the decompressed body too,
which is inflated only up to the limit, so a small compressed bomb costs no more memory than an honest body. The
signature covers "the payload in its raw bytes form"; whether those are the compressed bytes or the JSON they
carry is not spelled out, so either verifies (each is a full ECDSA check over bytes SendGrid signed: accepting
both opens no way to forge one).
"""

from __future__ import annotations

import logging
import zlib
from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from digest.app import App
from digest.errors import ConfigError
from digest.feedback import sendgrid
from digest.feedback.process import apply_events

log = logging.getLogger(__name__)


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            # Stop reading: a sender that lies about (or omits) Content-Length gets no more of our memory.
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class _BadEncoding(Exception):
    pass


def gunzip_bounded(data: bytes, limit: int) -> bytes:
    """The decompressed body, never holding more than ``limit`` + 1 bytes of it; _TooLarge past the limit."""
    out = bytearray()
    rest = data
    while rest:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing only
        try:
            out += inflater.decompress(rest, limit + 1 - len(out))
            if len(out) > limit or inflater.unconsumed_tail:
                raise _TooLarge
            out += inflater.flush(limit + 1 - len(out))
        except zlib.error as exc:
            raise _BadEncoding(f"body: not valid gzip ({exc})") from None
        if len(out) > limit:
            raise _TooLarge
        if not inflater.eof:
            raise _BadEncoding("body: truncated gzip data")
        rest = inflater.unused_data  # a further gzip member, as RFC 1952 allows
    return bytes(out)


def _refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def webhook_routes(app: App) -> list[BaseRoute]:
    """Routes for a Starlette app; ``app`` is the `digest.app.App` whose settings and store they use."""

    async def sendgrid_events(request: Request) -> Response:
        settings = app.settings
        try:
            public_key = sendgrid.load_public_key(settings.sendgrid_webhook_public_key)
        except ConfigError as exc:
            # Unverifiable means refused: an unconfigured key must not turn into "accept anything".
            log.warning("SendGrid webhook refused: %s", exc)
            return _refuse(403, "webhook signature verification is not configured")
        headers = {name: request.headers.get(name, "")
                   for name in (sendgrid.SIGNATURE_HEADER, sendgrid.TIMESTAMP_HEADER)}
        now = datetime.now(UTC)
        tolerance = int(settings.webhook_tolerance_seconds)
        limit = int(settings.webhook_max_body_bytes)
        encoding = request.headers.get("content-encoding", "").strip().lower()
        if encoding not in ("", "identity", "gzip"):
            return _refuse(415, f"Content-Encoding {encoding!r} is not supported (gzip is)")
        try:
            if not all(headers.values()):
                raise sendgrid.WebhookRejected("missing signature headers")
            sendgrid.check_timestamp(headers[sendgrid.TIMESTAMP_HEADER], now=now, tolerance_seconds=tolerance)
            body = await _read_body(request, limit)
            if encoding == "gzip":
                wire, body = body, gunzip_bounded(body, limit)
                try:
                    sendgrid.verify(public_key, headers, wire, now=now, tolerance_seconds=tolerance)
                except sendgrid.WebhookRejected:
                    sendgrid.verify(public_key, headers, body, now=now, tolerance_seconds=tolerance)
            else:
                sendgrid.verify(public_key, headers, body, now=now, tolerance_seconds=tolerance)
        except _TooLarge:
            return _refuse(413, f"body larger than webhook_max_body_bytes ({settings.webhook_max_body_bytes})"
                           + (" once decompressed" if encoding == "gzip" else ""))
        except _BadEncoding as exc:
            return _refuse(400, str(exc))
        except sendgrid.WebhookRejected as exc:
            log.warning("SendGrid webhook refused from %s: %s", request.client.host if request.client else "?", exc)
            return _refuse(403, "forbidden")
        try:
            events = sendgrid.parse_events(body, received_at=now)
        except sendgrid.PayloadError as exc:
            return _refuse(400, str(exc))

        def process() -> dict[str, int]:
            with app.store.session() as session:
                return apply_events(session, settings, events, now=now).to_json()

        # Store work is synchronous; keep it off the event loop. An exception here rolls the batch back and
        # answers 500, which makes SendGrid retry it later.
        result = await run_in_threadpool(process)
        return JSONResponse(result)

    return [Route("/webhooks/sendgrid", sendgrid_events, methods=["POST"], name="sendgrid_webhook")]
