"""The one shape every provider backend has, in the style of django-anymail.

A backend turns a batch of recipients of one rendered variant into provider calls: ``build_payload`` →
``post`` → ``parse_response``. Backends know nothing of the store: `digest.send.dispatch` hands them ready
content and records what came back. A backend that cannot honour an option raises `UnsupportedFeature`
instead of silently ignoring it.

Errors a backend raises tell the dispatcher what to do next:

- `RateLimited`: wait until ``retry_at`` then try the same batch again (not counted as a retry);
- `TransientError`: the provider did not take the batch (5xx, connection refused); retry with backoff;
  `Unreachable` (no connection at all) stops the send once the retries run out, leaving the rest pending;
- `InDoubtError`: the request reached the provider but no answer came back (read timeout, dropped
  connection): it may or may not have been accepted, so only a cancel or the in-doubt rule may resend it;
- `PermanentError`: the provider refused the batch (4xx); fail it with the provider's message, no retry;
- `AuthError`: the credentials were refused; stop the whole send (every batch would fail the same way).

A refusal of one recipient is no error of the batch: the `BatchResult` names it, in ``bounced`` (the address
does not exist: fail it and record a hard bounce), ``later`` (a temporary refusal: try it again later in the
same send) or ``rejected`` (this backend cannot send to it: fail it, the address itself may be fine).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, ClassVar, Self

from digest.config import Settings
from digest.errors import DigestError, SendError
from digest.render.edition import RenderedEdition
from digest.render.personalize import Recipient as PersonalValues
from digest.store.tables import MailingListRow


class UnsupportedFeature(DigestError):
    """A backend was asked for something it cannot do (e.g. --sandbox through SMTP)."""

    exit_code = 2


class ProviderError(SendError):
    """Base of the errors a backend raises about one batch."""


class PermanentError(ProviderError):
    """The provider refused the batch; retrying the same request would fail the same way."""


class RecipientBounced(PermanentError):
    """The server refused this recipient's address for good (SMTP 5.1.x, "user unknown"): a hard bounce."""


class AuthError(PermanentError):
    """The provider refused our credentials: no batch can succeed."""


class TransientError(ProviderError):
    """The provider did not take the batch (5xx, refused connection): safe to retry."""


class RecipientDeferred(TransientError):
    """The server refused this recipient for now (SMTP 4xx at RCPT or after the message): try it again later."""


class Unreachable(TransientError):
    """The provider could not be reached at all (connection refused, unknown host): retried like any transient
    error, but once the retries run out the send stops with the rest still pending, since every later batch would
    meet the same wall and fail for good."""


class InDoubtError(ProviderError):
    """The request reached the provider and its answer was lost: it may have been accepted."""


class RateLimited(ProviderError):
    """The provider asked us to slow down; ``retry_at`` is a Unix time (X-RateLimit-Reset)."""

    def __init__(self, message: str, retry_at: float) -> None:
        super().__init__(message)
        self.retry_at = retry_at


@dataclass(frozen=True)
class Recipient:
    """One subscriber of a batch: its delivery row and its personal values (name, address, signed links)."""

    delivery_id: int
    person: PersonalValues

    @property
    def email(self) -> str:
        return self.person.email

    @property
    def subscriber_id(self) -> int:
        return int(self.person.subscriber_id or 0)


@dataclass
class Content:
    """A rendered variant (placeholder tokens still in) and the list whose headers it goes out with."""

    edition_id: int
    variant_id: int
    list_row: MailingListRow  # detached: only its sender fields and name are read
    rendered: RenderedEdition


@dataclass
class BatchResult:
    """What the provider answered for a batch: the recipients it accepted, and a message id if it gave one."""

    accepted: list[int] = field(default_factory=list)  # delivery ids
    rejected: dict[int, str] = field(default_factory=dict)  # delivery id → provider message
    bounced: dict[int, str] = field(default_factory=dict)  # delivery id → the server's refusal of the address
    later: dict[int, str] = field(default_factory=dict)  # delivery id → the server's temporary refusal
    provider_message_id: str | None = None


@dataclass(frozen=True)
class Schedule:
    """A SendGrid request scheduled ahead (send_at) under its own batch id, so it can be cancelled."""

    batch_id: str
    send_at: int


class Backend(ABC):
    """Base of the sending backends. Subclasses implement the three steps; `send_batch` runs them."""

    name: ClassVar[str]
    max_batch_size: ClassVar[int] = 1
    supports_sandbox: ClassVar[bool] = False
    supports_schedule: ClassVar[bool] = False

    def __init__(self, settings: Settings, *, sandbox: bool = False) -> None:
        if sandbox and not self.supports_sandbox:
            raise UnsupportedFeature(f"--sandbox is not supported by the {self.name} backend (only sendgrid)")
        self.settings = settings
        self.sandbox = sandbox

    # --- lifecycle: a backend may hold a connection across batches ----------------------------------------

    def open(self) -> None:
        """Open what the backend reuses across batches (an SMTP connection)."""

    def close(self) -> None:
        """Release what `open` acquired. Safe to call twice."""

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the anymail-style pipeline -----------------------------------------------------------------------

    def send_batch(self, content: Content, recipients: Sequence[Recipient], *,
                   schedule: Schedule | None = None) -> BatchResult:
        if not recipients:
            return BatchResult()
        if len(recipients) > self.max_batch_size:
            raise UnsupportedFeature(f"the {self.name} backend takes at most {self.max_batch_size} recipients "
                                     f"per call, got {len(recipients)}")
        if schedule is not None and not self.supports_schedule:
            raise UnsupportedFeature(f"the {self.name} backend cannot schedule a send (send_at)")
        payload = self.build_payload(content, recipients, schedule)
        response = self.post(payload)
        return self.parse_response(response, recipients)

    def prepare(self, content: Content, recipients: Sequence[Recipient]) -> None:
        """Work out ahead what `build_payload` needs of each of these recipients, while the request before theirs
        is in flight (`deliver` calls it with its guess of the next request). Only a cache: `build_payload` uses
        an entry only for the very recipient object it was made for, and does the work itself otherwise. The
        default prepares nothing."""

    @abstractmethod
    def build_payload(self, content: Content, recipients: Sequence[Recipient], schedule: Schedule | None) -> Any:
        """What the provider is sent: a JSON body, MIME bytes, ..."""

    @abstractmethod
    def post(self, payload: Any) -> Any:
        """Hand the payload to the provider; raise one of this module's errors on failure."""

    @abstractmethod
    def parse_response(self, response: Any, recipients: Sequence[Recipient]) -> BatchResult:
        """Turn the provider's answer into a `BatchResult`."""

    # --- scheduling (SendGrid): shrink the in-doubt window ------------------------------------------------

    def new_schedule(self, delay_seconds: int, now: float) -> Schedule:
        raise UnsupportedFeature(f"the {self.name} backend cannot schedule a send (send_at)")

    def cancel_schedule(self, batch_id: str) -> None:
        raise UnsupportedFeature(f"the {self.name} backend cannot cancel a scheduled send")

    # --- one-off messages (confirmations, test sends) -----------------------------------------------------

    @abstractmethod
    def send_message(self, message: EmailMessage) -> str:
        """Send one complete message (From, To, Subject set); return the provider's id for it."""
