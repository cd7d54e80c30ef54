"""What provider events do to subscribers: bounces, complaints, unsubscribes, soft bounces, clicks, replays.

Runs on SQLite and PostgreSQL (the `store` fixture), with SendGrid-shaped events normalized by the real parser.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from digest.audience import lifecycle
from digest.config import Settings
from digest.feedback.events import BounceType, EventType, RejectReason
from digest.feedback.process import ProcessResult, apply_events, strip_tracking
from digest.feedback.sendgrid import normalize
from digest.store.db import Store
from digest.store.tables import AuditRow, EventRow, SubscriberRow
from tests.feedback_support import ADDRESSES, World, build_world, settings_for, sg_event, status_of

NOW = datetime(2024, 5, 4, 12, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path, store: Store) -> Settings:
    return settings_for(tmp_path, store.url, soft_bounce_limit=3)


@pytest.fixture
def world(store: Store, settings: Settings) -> World:
    with store.session() as s:
        return build_world(s, settings)


def apply(store: Store, settings: Settings, raw: list[dict[str, Any]]) -> ProcessResult:
    events = [normalize(r, received_at=NOW) for r in raw]
    with store.session() as s:
        return apply_events(s, settings, events, now=NOW)


def test_hard_bounce_marks_the_address_bounced_on_every_list_and_suppresses_it(
        store: Store, settings: Settings, world: World) -> None:
    result = apply(store, settings, [sg_event("bounce", "alice@example.org", edition_id=world.editions[0],
                                              subscriber_id=world.sub("alice@daily"), type="bounce",
                                              reason="550 5.1.1 The email account does not exist", status="5.1.1")])
    assert (result.recorded, result.status_changes, result.suppressed) == (1, 2, 1)
    with store.session() as s:
        assert status_of(s, world.sub("alice@daily")) == "bounced"
        assert status_of(s, world.sub("alice@weekly")) == "bounced"
        assert status_of(s, world.sub("bob@daily")) == "active"
        assert lifecycle.is_suppressed(s, ADDRESSES["alice"])
        audits = list(s.scalars(select(AuditRow).where(AuditRow.email_key == "alice@example.org")))
        assert {a.list_id for a in audits} == {world.daily, world.weekly}
        assert all(a.actor == "sendgrid-webhook" and a.old_status == "active" for a in audits)
        assert all("550 5.1.1" in (a.reason or "") for a in audits)


def test_after_a_hard_bounce_the_next_send_skips_the_address(store: Store, settings: Settings, world: World) -> None:
    """The sender mails `audience.subscribers.recipients(list)`; a bounced address must be out of it everywhere."""
    from digest.audience.subscribers import recipients
    from digest.store.tables import MailingListRow

    def addresses(s: Any, list_id: int) -> set[str]:
        list_row = s.get(MailingListRow, list_id)
        return {row.email_key for row in s.scalars(recipients(list_row))}

    with store.session() as s:
        assert "alice@example.org" in addresses(s, world.daily) and "alice@example.org" in addresses(s, world.weekly)
    apply(store, settings, [sg_event("bounce", "alice@example.org", edition_id=world.editions[0],
                                     subscriber_id=world.sub("alice@daily"), type="bounce", reason="550 unknown")])
    with store.session() as s:
        assert addresses(s, world.daily) == {"bob@example.org", "carol@example.org"}
        assert addresses(s, world.weekly) == set()


def test_a_replayed_event_counts_once(store: Store, settings: Settings, world: World) -> None:
    batch = [sg_event("delivered", "bob@example.org", edition_id=world.editions[0],
                      subscriber_id=world.sub("bob@daily"), sg_event_id="replayed-1"),
             sg_event("spamreport", "carol@example.org", edition_id=world.editions[0],
                      subscriber_id=world.sub("carol@daily"), sg_event_id="replayed-2")]
    first = apply(store, settings, batch)
    again = apply(store, settings, batch)
    # The same event twice in one batch (SendGrid may batch a retry with new events) counts once too.
    within = apply(store, settings, [batch[0], batch[0]])
    assert (first.recorded, first.duplicates) == (2, 0)
    assert (again.recorded, again.duplicates, again.status_changes, again.suppressed) == (0, 2, 0, 0)
    assert (within.recorded, within.duplicates) == (0, 2)
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(EventRow)) == 2
        assert s.scalar(select(func.count()).select_from(AuditRow)) == 1


def test_the_same_batch_posted_twice_at_once_is_applied_once(store: Store, settings: Settings,
                                                             world: World) -> None:
    """SendGrid may retry while the first attempt is still being processed: the constraint decides who wins."""
    import threading

    batch = [sg_event("spamreport", "bob@example.org", edition_id=world.editions[0],
                      subscriber_id=world.sub("bob@daily")),
             sg_event("bounce", "alice@example.org", edition_id=world.editions[0], type="blocked",
                      subscriber_id=world.sub("alice@daily")),
             sg_event("open", "carol@example.org", edition_id=world.editions[0], subscriber_id=world.sub("carol@daily"))]
    results: list[ProcessResult] = []
    errors: list[Exception] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(apply(store, settings, batch))
        except Exception as exc:  # noqa: BLE001 - a thread's failure is reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    assert sorted((r.recorded, r.duplicates) for r in results) == [(0, 3), (3, 0)]
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(EventRow)) == 3
        assert s.scalar(select(func.count()).select_from(AuditRow)) == 1
        row = s.get(SubscriberRow, world.sub("alice@daily"))
        assert row is not None and row.soft_bounces == 1


def test_soft_bounces_suppress_only_after_the_limit_in_a_row(store: Store, settings: Settings, world: World) -> None:
    alice = world.sub("alice@daily")
    # SendGrid reports a deferral on each retry of one message: one edition is one failure, however many retries.
    apply(store, settings, [sg_event("deferred", "alice@example.org", edition_id=world.editions[0],
                                     subscriber_id=alice, response="451 try again later", attempt=str(n))
                            for n in range(1, 5)])
    apply(store, settings, [sg_event("bounce", "alice@example.org", edition_id=world.editions[1],
                                     subscriber_id=alice, type="blocked", reason="421 rate limited")])
    with store.session() as s:
        row = s.get(SubscriberRow, alice)
        assert row is not None and (row.status, row.soft_bounces) == ("active", 2)
        assert not lifecycle.is_suppressed(s, "alice@example.org")
    apply(store, settings, [sg_event("bounce", "alice@example.org", edition_id=world.editions[2],
                                     subscriber_id=alice, type="blocked", reason="421 mailbox busy")])
    with store.session() as s:
        assert status_of(s, alice) == "bounced"
        assert status_of(s, world.sub("alice@weekly")) == "bounced"
        assert lifecycle.is_suppressed(s, "alice@example.org")
        audit = s.scalar(select(AuditRow).where(AuditRow.subscriber_id == alice))
        assert audit is not None and "3 soft bounces in a row" in (audit.reason or "")


def test_a_delivery_resets_the_soft_bounce_count(store: Store, settings: Settings, world: World) -> None:
    bob = world.sub("bob@daily")
    t0 = NOW - timedelta(hours=10)
    apply(store, settings, [
        sg_event("bounce", "bob@example.org", edition_id=world.editions[0], subscriber_id=bob, type="blocked",
                 at=t0),
        sg_event("bounce", "bob@example.org", edition_id=world.editions[1], subscriber_id=bob, type="blocked",
                 at=t0 + timedelta(hours=1)),
        # Posted out of order in the batch but later in time: it breaks the run of failures.
        sg_event("delivered", "bob@example.org", edition_id=world.editions[1], subscriber_id=bob,
                 at=t0 + timedelta(hours=2)),
    ][::-1])
    with store.session() as s:
        row = s.get(SubscriberRow, bob)
        assert row is not None and row.soft_bounces == 0
    apply(store, settings, [sg_event("deferred", "bob@example.org", edition_id=world.editions[2],
                                     subscriber_id=bob)])
    with store.session() as s:
        row = s.get(SubscriberRow, bob)
        assert row is not None and (row.status, row.soft_bounces) == ("active", 1)
        assert not lifecycle.is_suppressed(s, "bob@example.org")


def test_spamreport_marks_complained_everywhere_and_suppresses(store: Store, settings: Settings,
                                                             world: World) -> None:
    apply(store, settings, [sg_event("spamreport", "alice@example.org", edition_id=world.editions[0],
                                     subscriber_id=world.sub("alice@daily"))])
    with store.session() as s:
        assert status_of(s, world.sub("alice@daily")) == "complained"
        assert status_of(s, world.sub("alice@weekly")) == "complained"
        assert lifecycle.is_suppressed(s, "ALICE@example.org")
    # A later unsubscribe or bounce must not soften the record of a complaint.
    apply(store, settings, [
        sg_event("unsubscribe", "alice@example.org", edition_id=world.editions[1],
                 subscriber_id=world.sub("alice@daily")),
        sg_event("bounce", "alice@example.org", edition_id=world.editions[1], subscriber_id=world.sub("alice@daily"),
                 type="bounce", reason="550 gone")])
    with store.session() as s:
        assert status_of(s, world.sub("alice@daily")) == "complained"


@pytest.mark.parametrize(("reason", "status", "suppressed"), [
    ("Bounced Address", "bounced", True),
    ("Invalid", "bounced", True),
    ("Spam Reporting Address", "complained", True),
    ("Unsubscribed Address", "unsubscribed", False),
    ("Invalid SMTPAPI header", "active", False),
    ("Spam Content (if spam checker app enabled)", "active", False),
])
def test_dropped_suppresses_only_for_a_bad_or_hostile_address(store: Store, settings: Settings, world: World,
                                                              reason: str, status: str, suppressed: bool) -> None:
    result = apply(store, settings, [sg_event("dropped", "carol@example.org", edition_id=world.editions[0],
                                              subscriber_id=world.sub("carol@daily"), reason=reason)])
    assert result.recorded == 1
    with store.session() as s:
        assert status_of(s, world.sub("carol@daily")) == status
        assert lifecycle.is_suppressed(s, "carol@example.org") is suppressed
        event = s.scalar(select(EventRow))
        assert event is not None and (event.type, event.reason) == ("rejected", reason)


@pytest.mark.parametrize("kind", ["unsubscribe", "group_unsubscribe"])
def test_unsubscribe_leaves_that_list_only(store: Store, settings: Settings, world: World, kind: str) -> None:
    apply(store, settings, [sg_event(kind, "alice@example.org", edition_id=world.editions[0],
                                     subscriber_id=world.sub("alice@daily"), asm_group_id=12)])
    with store.session() as s:
        assert status_of(s, world.sub("alice@daily")) == "unsubscribed"
        assert status_of(s, world.sub("alice@weekly")) == "active"
        assert not lifecycle.is_suppressed(s, "alice@example.org")
        audit = s.scalar(select(AuditRow))
        assert audit is not None and audit.actor == "sendgrid-webhook" and kind in (audit.reason or "")


def test_events_without_custom_args_are_matched_by_address(store: Store, settings: Settings, world: World) -> None:
    apply(store, settings, [sg_event("bounce", "BOB@example.org", type="bounce", reason="550 no such user")])
    with store.session() as s:
        assert status_of(s, world.sub("bob@daily")) == "bounced"
        event = s.scalar(select(EventRow))
        assert event is not None and event.email_key == "bob@example.org" and event.subscriber_id is None


def test_a_subscriber_id_naming_another_address_does_not_move_that_subscriber(
        store: Store, settings: Settings, world: World) -> None:
    apply(store, settings, [sg_event("spamreport", "carol@example.org", edition_id=world.editions[0],
                                     subscriber_id=world.sub("bob@daily"))])
    with store.session() as s:
        assert status_of(s, world.sub("bob@daily")) == "active"
        assert status_of(s, world.sub("carol@daily")) == "complained"
        event = s.scalar(select(EventRow))
        assert event is not None and event.subscriber_id == world.sub("carol@daily")


def test_opens_and_clicks_are_recorded_against_edition_subscriber_and_article(
        store: Store, settings: Settings, world: World) -> None:
    edition, bob = world.editions[0], world.sub("bob@daily")
    apply(store, settings, [
        sg_event("open", "bob@example.org", edition_id=edition, subscriber_id=bob, sg_machine_open=False),
        sg_event("click", "bob@example.org", edition_id=edition, subscriber_id=bob,
                 url=world.urls["budget"] + "&utm_source=digest&utm_medium=email&utm_campaign=daily-2024-05-01"),
        sg_event("click", "bob@example.org", edition_id=edition, subscriber_id=bob,
                 url="https://NEWS.example.com/2024/harbour-bridge?utm_source=digest#top"),
        sg_event("click", "bob@example.org", edition_id=edition, subscriber_id=bob,
                 url="https://elsewhere.example.net/unrelated?utm_source=digest"),
        # An edition id that does not exist is not trusted: the event is kept, tied to no edition.
        sg_event("open", "bob@example.org", edition_id=999_999, subscriber_id=bob),
    ])
    with store.session() as s:
        rows = list(s.scalars(select(EventRow).order_by(EventRow.id)))
        assert [r.type for r in rows] == ["opened", "clicked", "clicked", "clicked", "opened"]
        assert [r.edition_id for r in rows] == [edition] * 4 + [None]
        assert all(r.subscriber_id == bob for r in rows)
        assert [r.article_id for r in rows[1:4]] == [world.articles["budget"], world.articles["harbour"], None]
        assert status_of(s, bob) == "active"


def test_a_late_event_for_a_forgotten_address_keeps_no_trace_of_it(store: Store, settings: Settings,
                                                                    world: World) -> None:
    with store.session() as s:
        # What audience's `forget` leaves: the address's rows gone, a hashed "forgotten" suppression.
        for row in s.scalars(select(SubscriberRow).where(SubscriberRow.email_key == "carol@example.org")):
            s.delete(row)
        lifecycle.suppress(s, "carol@example.org", "forgotten", "erasure request")
    result = apply(store, settings, [sg_event("open", "carol@example.org", edition_id=world.editions[0],
                                              subscriber_id=world.sub("carol@daily"), ip="192.0.2.7",
                                              useragent="Fictional Mail 1.0")])
    assert result.recorded == 1
    with store.session() as s:
        event = s.scalar(select(EventRow))
        assert event is not None and event.email_key is None and event.subscriber_id is None
        assert event.edition_id == world.editions[0] and event.type == "opened"
        assert "carol" not in repr(event.payload) and "192.0.2.7" not in repr(event.payload)


def test_normalize_maps_sendgrid_events_like_anymail() -> None:
    received = datetime(2024, 5, 1, tzinfo=UTC)
    blocked = normalize({"event": "bounce", "type": "blocked", "email": "a@example.org", "timestamp": 1714550400,
                         "sg_event_id": "x1", "edition_id": "7", "subscriber_id": "not-a-number"},
                        received_at=received)
    assert (blocked.type, blocked.bounce_type, blocked.reject_reason) == (EventType.BOUNCED, BounceType.SOFT,
                                                                          RejectReason.BLOCKED)
    assert blocked.is_soft_failure and not blocked.is_hard_bounce
    assert (blocked.edition_id, blocked.subscriber_id) == (7, None)
    assert blocked.timestamp == datetime(2024, 5, 1, 8, tzinfo=UTC)
    hard = normalize({"event": "bounce", "email": "a@example.org", "sg_event_id": "x2"}, received_at=received)
    assert hard.is_hard_bounce and hard.timestamp == received
    dropped = normalize({"event": "dropped", "reason": "Bounced Address", "sg_event_id": "x3"}, received_at=received)
    assert dropped.type == EventType.DROPPED == EventType.REJECTED and dropped.reject_reason == RejectReason.BOUNCED
    assert normalize({"event": "group_unsubscribe"}, received_at=received).type == EventType.UNSUBSCRIBED
    assert normalize({"event": "something_new"}, received_at=received).type == EventType.UNKNOWN
    # No sg_event_id: a content hash, identical on a retry, different for a different event.
    a = normalize({"event": "open", "email": "a@example.org", "timestamp": 1}, received_at=received)
    b = normalize({"timestamp": 1, "email": "a@example.org", "event": "open"}, received_at=received)
    c = normalize({"event": "open", "email": "a@example.org", "timestamp": 2}, received_at=received)
    assert a.provider_event_id == b.provider_event_id != c.provider_event_id


def test_strip_tracking_keeps_real_query_parameters() -> None:
    assert strip_tracking("https://Ex.example.com/a?id=7&utm_source=x&UTM_Medium=y#frag") == \
        "https://ex.example.com/a?id=7"
    assert strip_tracking("https://ex.example.com") == "https://ex.example.com/"


def test_a_click_on_a_hosted_deep_look_is_tied_to_its_article(store: Store, settings: Settings,
                                                              world: World) -> None:
    # Articles without a page of their own are linked to `digest serve`'s /articles/<id> (render/context.py).
    edition, bob = world.editions[0], world.sub("bob@daily")
    budget = world.articles["budget"]
    apply(store, settings, [
        sg_event("click", "bob@example.org", edition_id=edition, subscriber_id=bob,
                 url=f"https://digest.example.org/articles/{budget}?utm_source=digest&utm_campaign=daily"),
        sg_event("click", "bob@example.org", edition_id=edition, subscriber_id=bob,
                 url="https://digest.example.org/articles/0123456789abcdef"),  # not in this edition
    ])
    with store.session() as s:
        assert [r.article_id for r in s.scalars(select(EventRow).order_by(EventRow.id))] == [budget, None]
