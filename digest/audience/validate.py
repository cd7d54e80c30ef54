"""Checking and normalizing what people type or import: addresses, time zones, send times, topics, statuses."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import idna
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import DOT_ATOM_TEXT, EMAIL_MAX_LENGTH, LOCAL_PART_MAX_LENGTH

from digest.i18n.languages import UnknownLanguage, normalize
from digest.ingest.topics import normalize_topic
from digest.models import SUBSCRIBER_STATUSES


class Invalid(ValueError):
    """One value is wrong; the message says why, for a row report or a form."""


def check_language(value: str) -> str:
    """A supported BCP 47 tag, normalized (``pt_br`` → ``pt-BR``); the error lists the supported ones."""
    try:
        return normalize(value)
    except UnknownLanguage as exc:
        raise Invalid(str(exc)) from None


_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_TOPIC_SPLIT = re.compile(r"[,;|]")
_LIST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# SubscriberRow.name is String(300): a longer name would fail PostgreSQL's insert, and an export holding one
# (SQLite stores it) would not import back.
MAX_NAME = 300


def normalize_email(raw: str) -> str:
    """The address as email-validator normalizes it (domain lower-cased, IDN in Unicode form); no DNS lookups.

    Most addresses are plain ASCII with a domain shared by thousands of others, and the domain check is most of
    email-validator's cost; for those, the domain is checked once (by email-validator, cached) and the local part
    with email-validator's own dot-atom pattern, which gives the same answer as the full check (a test compares
    them). Anything else takes the full check.
    """
    value = (raw or "").strip()
    if not value:
        raise Invalid("no email address")
    local, at, domain = value.rpartition("@")
    if at and len(local) <= LOCAL_PART_MAX_LENGTH and domain.isascii() and DOT_ATOM_TEXT.match(local):
        try:
            address = f"{local}@{_domain(domain)}"
        except EmailNotValidError:
            pass  # the full check below words the error
        else:
            if len(address) <= EMAIL_MAX_LENGTH:
                return address
    try:
        return str(validate_email(value, check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise Invalid(f"invalid email address {value!r}: {exc}") from None


@lru_cache(maxsize=8192)
def _domain(domain: str) -> str:
    return str(validate_email(f"x@{domain}", check_deliverability=False).domain)


@lru_cache(maxsize=8192)
def ascii_domain(domain: str) -> str:
    """A stored (Unicode) domain in the ASCII form SMTP envelopes and headers need: `bücher.example` →
    `xn--bcher-kva.example`, by IDNA 2008 as email-validator checked it. Python's own "idna" codec is IDNA 2003,
    which turns `straße.example` into `strasse.example`: another domain, perhaps someone else's."""
    if domain.isascii():
        return domain
    try:
        return ".".join(label if label.isascii() else idna.alabel(label).decode("ascii")
                        for label in domain.split("."))
    except idna.IDNAError as exc:
        raise Invalid(f"the domain {domain!r} has no ASCII form ({exc})") from None


def ascii_address(email: str) -> str:
    """A stored address as an API that takes only ASCII addresses needs it (SendGrid's ``email`` format): the
    domain in its IDNA form, the local part as it is. A local part that is not ASCII has no ASCII form at all
    (only SMTPUTF8 carries it), so it raises Invalid."""
    local, _, domain = email.rpartition("@")
    if not local.isascii():
        raise Invalid(f"{email!r}: the part before the @ is not ASCII, and SendGrid accepts only ASCII there "
                      "(an SMTP server that offers SMTPUTF8 can take it: backend = \"smtp\")")
    return f"{local}@{ascii_domain(domain)}"


def check_sendable(email: str, backend: str) -> str:
    """``email`` (normalized) if the list's backend can deliver to it; Invalid naming why not."""
    if backend == "sendgrid":
        ascii_address(email)
    return email


def clean_name(raw: str | None) -> str | None:
    """A name as one line: control characters (line breaks, tabs) become spaces and runs of spaces one space.

    Names end up in greetings and in the To header; a line break in one is never meant, whether it came from a
    form or a quoted CSV cell. None (or nothing left) means "no name". A name longer than ``MAX_NAME`` raises
    Invalid, wherever it comes from (file, command line, web form): cutting it would store a name nobody typed.
    """
    value = raw or ""
    if not value.isprintable():
        value = "".join(c if c.isprintable() else " " for c in value)
    name = " ".join(value.split()) or None
    if name is not None and len(name) > MAX_NAME:
        raise Invalid(f"a name may have at most {MAX_NAME} characters (this one has {len(name)})")
    return name


def check_timezone(value: str) -> str:
    value = (value or "").strip()
    if not _known_zone(value):
        raise Invalid(f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)")
    return value


@lru_cache(maxsize=1024)
def _known_zone(value: str) -> bool:
    if not value or value.startswith("/") or ".." in value:
        return False
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@lru_cache(maxsize=1)
def all_timezones() -> tuple[str, ...]:
    """Every IANA zone name, sorted (a tuple: the one cached copy is shared by every preferences page)."""
    return tuple(sorted(available_timezones()))


def check_send_time(value: str) -> str:
    match = _TIME.match((value or "").strip())
    if not match:
        raise Invalid(f"invalid send time {value!r} (use HH:MM, 00:00 to 23:59)")
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def parse_topics(value: str | Iterable[str] | None, offered: Iterable[str] | None = None) -> list[str]:
    """Topics as a clean, de-duplicated list; with ``offered`` (a list's topics, if it has any), only those.

    Normalized as ingest names articles' topics (``normalize_topic``), so a subscriber's choice matches them.
    """
    parts = _TOPIC_SPLIT.split(value) if isinstance(value, str) else list(value or [])
    topics: list[str] = []
    for part in parts:
        topic = normalize_topic(str(part))
        if topic and topic not in topics:
            topics.append(topic)
    allowed = [normalize_topic(str(t)) for t in offered or []]
    if allowed:
        unknown = [t for t in topics if t not in allowed]
        if unknown:
            raise Invalid(f"unknown topic(s) {', '.join(unknown)} (the list offers: {', '.join(allowed)})")
    return topics


def check_status(value: str) -> str:
    status = (value or "").strip().lower()
    if status not in SUBSCRIBER_STATUSES:
        raise Invalid(f"invalid status {value!r} (one of: {', '.join(SUBSCRIBER_STATUSES)})")
    return status


def check_list_name(value: str) -> str:
    name = (value or "").strip()
    if not _LIST_NAME.match(name):
        raise Invalid(f"invalid list name {value!r} (letters, digits, '.', '_' and '-', at most 100 characters)")
    return name
