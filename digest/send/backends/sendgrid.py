"""The SendGrid backend: v3 Mail Send through the official `sendgrid` package.

One request carries up to 1,000 personalizations, one recipient each, with that recipient's substitutions
(an HTML-escaped and a plain value per placeholder, since SendGrid substitutes in every content part alike),
``custom_args`` (edition, subscriber and delivery ids, inside the personalization: SendGrid's spec types a
top-level ``custom_args`` as a string) and the per-recipient List-Unsubscribe header.

Addresses go out as SendGrid's spec types them (``format: email``: ASCII only): an internationalized domain in
its IDNA form (``frank@xn--bcher-kva.example``; the store and the To name keep the Unicode form). A local part
that is not ASCII has no such form: that recipient fails with the reason, and the rest of the request goes out.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

from python_http_client.client import Response
from python_http_client.exceptions import HTTPError, handle_error
from sendgrid import SendGridAPIClient

from digest.audience.validate import Invalid, ascii_address
from digest.config import Settings
from digest.errors import ConfigError
from digest.render.message import list_id_header, unsubscribe_mailto
from digest.render.personalize import HeaderInjection
from digest.send.backends.base import (
    AuthError,
    Backend,
    BatchResult,
    Content,
    InDoubtError,
    PermanentError,
    RateLimited,
    Recipient,
    Schedule,
    TransientError,
    Unreachable,
)
from digest.send.backends.sendgrid_body import VariantBody, used_tokens

# python_http_client logs every request's headers, the API key included, at DEBUG: keep that out of any log,
# whatever level the application configures.
logging.getLogger("python_http_client.client").setLevel(logging.INFO)


class RequestRefused(PermanentError):
    """SendGrid refused the request (400); ``errors`` is its ``errors`` array, each naming a ``field``."""

    def __init__(self, message: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.errors = errors


# The field of an error about one address, as SendGrid names it: "personalizations.3.to.0.email".
_ADDRESS_FIELD = re.compile(r"^personalizations\.(\d+)\.(?:to|cc|bcc)\.\d+\.email$")


def _error_list(body: bytes | str | None) -> list[dict[str, Any]]:
    try:
        data = json.loads(body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or ""))
        errors = data.get("errors") if isinstance(data, dict) else None
    except ValueError:
        return []
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def refused_recipients(errors: list[dict[str, Any]], count: int) -> dict[int, str] | None:
    """Personalization index → SendGrid's message, when every error of a 400 names one address of the request
    (e.g. "Does not contain a valid address."); None when any error is about the request itself."""
    found: dict[int, str] = {}
    for err in errors:
        match = _ADDRESS_FIELD.match(str(err.get("field") or ""))
        if match is None or int(match.group(1)) >= count:
            return None
        found[int(match.group(1))] = f"SendGrid refused the address: {err.get('message')} (field {err['field']})"
    return found or None


def provider_message(body: bytes | str | None) -> str:
    """The `errors[].message` (and field) of a SendGrid error body, or the body itself."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        data = json.loads(body or "")
        parts = []
        for err in data.get("errors", []):
            field = err.get("field")
            parts.append(f"{err.get('message')}" + (f" (field {field})" if field else ""))
        if parts:
            return "; ".join(parts)
    except (ValueError, AttributeError):
        pass
    return (body or "").strip()[:500]


class SendGridBackend(Backend):
    name = "sendgrid"
    max_batch_size = 1000
    supports_sandbox = True
    supports_schedule = True

    def __init__(self, settings: Settings, *, sandbox: bool = False) -> None:
        super().__init__(settings, sandbox=sandbox)
        api_key = settings.sendgrid_api_key
        if not api_key:
            raise ConfigError("SENDGRID_API_KEY is not set: the sendgrid backend reads its API key only from "
                              "that environment variable")
        self.client = SendGridAPIClient(api_key=api_key, host=settings.sendgrid_host.rstrip("/"))
        self.timeout = float(settings.sendgrid_timeout)
        self.categories = [str(c) for c in settings.sendgrid_categories][:10]
        self._bodies: dict[tuple[int, int], VariantBody] = {}
        self._ahead: dict[int, tuple[Recipient, VariantBody, str]] = {}  # `prepare`'s personalizations
        try:
            self.mailto = unsubscribe_mailto(settings)
        except HeaderInjection as exc:
            # Refused here, before the dispatcher claims a batch, rather than by every request.
            raise ConfigError(str(exc)) from None

    # --- requests -----------------------------------------------------------------------------------------

    def _call(self, what: str, request: Callable[[], Any]) -> Any:
        try:
            return request()
        except HTTPError as exc:
            status = int(exc.status_code)
            message = f"SendGrid {what}: {status} {provider_message(exc.body)}"
            if status == 429:
                headers = exc.headers or {}
                reset = headers.get("X-RateLimit-Reset") if hasattr(headers, "get") else None
                try:
                    retry_at = float(reset) if reset is not None else time.time() + 1.0
                except ValueError:
                    retry_at = time.time() + 1.0
                raise RateLimited(message, retry_at) from None
            if status in (401, 403):
                raise AuthError(message) from None
            if status >= 500:
                raise TransientError(message) from None
            if status == 400:
                raise RequestRefused(message, _error_list(exc.body)) from None
            raise PermanentError(message) from None
        except urllib.error.URLError as exc:
            # urllib wraps failures of sending the request (connect, write): the provider never had all of it.
            raise Unreachable(f"SendGrid {what}: {exc.reason}") from None
        except (TimeoutError, http.client.HTTPException, ConnectionError) as exc:
            # The request went out and the answer did not come back.
            raise InDoubtError(f"SendGrid {what}: no answer ({type(exc).__name__}: {exc})") from None

    def send_batch(self, content: Content, recipients: Sequence[Recipient], *,
                   schedule: Schedule | None = None) -> BatchResult:
        # A recipient SendGrid cannot take fails alone, before the request: one such address in it would make
        # SendGrid refuse all of it (up to 1,000 people).
        unsendable: dict[int, str] = {}
        sendable: list[Recipient] = []
        for r in recipients:
            try:
                ascii_address(r.email)
            except Invalid as exc:
                unsendable[r.delivery_id] = f"SendGrid: {exc}"
            else:
                sendable.append(r)
        bounced: dict[int, str] = {}
        while True:
            try:
                result = super().send_batch(content, sendable, schedule=schedule) if sendable else BatchResult()
                break
            except RequestRefused as exc:
                # SendGrid names the addresses it refuses (by personalization): those fail as hard bounces, and
                # the rest of the request goes again without them. Nothing of a refused request was sent.
                refused = refused_recipients(exc.errors, len(sendable))
                if refused is None:
                    raise
                bounced.update({sendable[i].delivery_id: message for i, message in refused.items()})
                sendable = [r for i, r in enumerate(sendable) if i not in refused]
        result.rejected.update(unsendable)
        result.bounced.update(bounced)
        return result

    def build_payload(self, content: Content, recipients: Sequence[Recipient],
                      schedule: Schedule | None) -> bytes:
        # The variant's shared part is encoded once per backend (one per send); each reader adds a
        # personalization: its address and name, its substitutions (SendGrid substitutes in every content part
        # alike, so each token, HTML, text or header, has its own value, escaped for its context), custom_args
        # and its List-Unsubscribe header. The address goes out in its IDNA form (the To name keeps the Unicode).
        body = self._body(content)
        ahead = self._ahead
        people = []
        for r in recipients:
            hit = ahead.get(r.delivery_id)
            people.append(hit[2] if hit is not None and hit[0] is r and hit[1] is body
                          else body.personalization(r, _address(r.email)))
        return body.encode(people, schedule)

    def prepare(self, content: Content, recipients: Sequence[Recipient]) -> None:
        # A new dict, swapped in whole: the request in flight may still be reading the previous one (in its
        # thread), and an entry counts only for its own recipient object and variant body.
        body = self._body(content)
        ahead: dict[int, tuple[Recipient, VariantBody, str]] = {}
        for r in recipients:
            try:
                ahead[r.delivery_id] = (r, body, body.personalization(r, _address(r.email)))
            except (HeaderInjection, PermanentError):
                continue  # left for build_payload, which raises it where the request is made
        self._ahead = ahead

    def _body(self, content: Content) -> VariantBody:
        key = (content.edition_id, content.variant_id)
        body = self._bodies.get(key)
        if body is None:
            rendered = content.rendered
            body = self._bodies[key] = VariantBody(
                self._static_payload(content), used_tokens(rendered.subject, rendered.html, rendered.text),
                edition_id=content.edition_id, mailto=self.mailto, language=rendered.language)
        return body

    def _static_payload(self, content: Content) -> dict[str, Any]:
        """Everything of a request that is the same for every recipient of the variant."""
        list_row, rendered = content.list_row, content.rendered
        sender: dict[str, str] = {"email": _address(list_row.from_email)}
        if list_row.from_name:
            sender["name"] = list_row.from_name
        payload: dict[str, Any] = {
            "from": sender,
            "subject": rendered.subject,
            # SendGrid requires text/plain before text/html.
            "content": [{"type": "text/plain", "value": rendered.text},
                        {"type": "text/html", "value": rendered.html}],
            "headers": {"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                        "List-Id": list_id_header(list_row, str(self.settings.base_url))},
        }
        if self.categories:
            payload["categories"] = self.categories
        if list_row.reply_to:
            payload["reply_to"] = {"email": _address(list_row.reply_to)}
        if self.sandbox:
            payload["mail_settings"] = {"sandbox_mode": {"enable": True}}
        return payload

    def post(self, payload: dict[str, Any] | bytes) -> Any:
        if isinstance(payload, bytes):
            return self._call("mail send", lambda: self._post_encoded(payload))
        return self._call("mail send", lambda: self.client.client.mail.send.post(
            request_body=payload, timeout=self.timeout))

    def _post_encoded(self, body: bytes) -> Response:
        """POST an already encoded body (python_http_client would json.dumps a dict again), with its errors."""
        client = self.client.client
        request = urllib.request.Request(f"{client.host}/v3/mail/send", data=body, method="POST",
                                         headers={**client.request_headers, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return Response(answer)
        except urllib.error.HTTPError as err:
            raise handle_error(err) from None

    def parse_response(self, response: Any, recipients: Sequence[Recipient]) -> BatchResult:
        status = int(response.status_code)
        if status not in (200, 202):  # 200: sandbox mode validated without sending
            raise PermanentError(f"SendGrid mail send: unexpected status {status}: {provider_message(response.body)}")
        headers = response.headers
        message_id = headers.get("X-Message-Id") if hasattr(headers, "get") else None
        return BatchResult(accepted=[r.delivery_id for r in recipients], provider_message_id=message_id)

    # --- scheduling ---------------------------------------------------------------------------------------

    def new_schedule(self, delay_seconds: int, now: float) -> Schedule:
        response = self._call("create batch id", lambda: self.client.client.mail.batch.post(timeout=self.timeout))
        try:
            batch_id = str(json.loads(response.body)["batch_id"])
        except (ValueError, KeyError, TypeError):
            raise PermanentError(f"SendGrid create batch id: unexpected answer {provider_message(response.body)}") \
                from None
        return Schedule(batch_id=batch_id, send_at=int(now) + int(delay_seconds))

    def cancel_schedule(self, batch_id: str) -> None:
        self._call("cancel scheduled send", lambda: self.client.client.user.scheduled_sends.post(
            request_body={"batch_id": batch_id, "status": "cancel"}, timeout=self.timeout))

    # --- one-off messages ---------------------------------------------------------------------------------

    def send_message(self, message: EmailMessage) -> str:
        senders = getaddresses([str(message["From"] or "")])
        sender_name, sender_email = senders[0] if senders else ("", self.settings.from_email)
        to = [{"email": _address(addr), **({"name": name} if name else {})}
              for name, addr in getaddresses([str(v) for v in message.get_all("To", [])]) if addr]
        if not to:
            raise PermanentError("transactional message has no To address")
        content = []
        for ctype in ("text/plain", "text/html"):
            part = message.get_body(preferencelist=(ctype.split("/")[1],))
            if part is not None and part.get_content_type() == ctype:
                content.append({"type": ctype, "value": part.get_content()})
        if not content:
            raise PermanentError("transactional message has neither a text nor an HTML part")
        headers = {k: str(v) for k, v in message.items()
                   if k.lower() in ("list-unsubscribe", "list-unsubscribe-post", "list-id", "auto-submitted")}
        payload: dict[str, Any] = {
            "personalizations": [{"to": to}],
            "from": {"email": _address(sender_email or self.settings.from_email),
                     **({"name": sender_name} if sender_name else {})},
            "subject": str(message["Subject"] or "(no subject)"),
            "content": content,
        }
        if headers:
            payload["headers"] = headers
        # Reply-To may not go in "headers" (SendGrid refuses it there): it has its own fields.
        replies = [{"email": _address(addr), **({"name": name} if name else {})}
                   for name, addr in getaddresses([str(v) for v in message.get_all("Reply-To", [])]) if addr]
        if len(replies) == 1:
            payload["reply_to"] = replies[0]
        elif replies:
            payload["reply_to_list"] = replies
        if self.categories:
            payload["categories"] = self.categories
        if self.sandbox:
            payload["mail_settings"] = {"sandbox_mode": {"enable": True}}
        response = self.post(payload)
        result = self.parse_response(response, [])
        return result.provider_message_id or "sendgrid"


def _address(email: str) -> str:
    """An address in the ASCII form SendGrid takes; one without (a sender, a Reply-To) refuses the request."""
    if email.isascii():  # nearly every address: nothing to convert
        return email
    try:
        return ascii_address(email)
    except Invalid as exc:
        raise PermanentError(f"SendGrid: {exc}") from None
