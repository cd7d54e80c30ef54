"""The public pages in-process (httpx ASGITransport) on both databases: subscribe with CSRF, honeypot and rate
limits; double and single opt-in; confirm; RFC 8058 one-click unsubscribe; preferences; bad tokens."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from digest.audience import tokens
from digest.store.tables import AuditRow, SubscriberRow, ThrottleRow
from digest.web.public import create_app

from .audience_support import Web, confirm_links, outbox_messages, path_of
from .conftest import Project


@pytest.fixture
def site(project: Project) -> Iterator[tuple[Project, Any, Web]]:
    project.write_config('outbox_dir = "outbox"\nsubscribe_rate_per_ip = 6\nsubscribe_rate_per_address = 2\n'
                         'postal_address = "Fictional Newsroom, 1 Sample Street"\n')
    project.run("lists", "create", "daily", "--topics", "politics,sports,culture", "--title", "The <Daily> Test")
    app = project.app()
    web = Web(create_app(app))
    yield project, app, web
    web.close()
    app.close()


def rows(app: Any, model: Any = SubscriberRow) -> list[Any]:
    with app.store.session() as session:
        return list(session.scalars(select(model).order_by(model.id if hasattr(model, "id") else model.key)))


def subscriber(app: Any, email: str) -> SubscriberRow:
    found = [r for r in rows(app) if r.email_key == email.lower()]
    assert len(found) == 1, f"{email}: {len(found)} rows"
    return found[0]


def audit_count(app: Any) -> int:
    with app.store.session() as session:
        return int(session.scalar(select(func.count()).select_from(AuditRow)) or 0)


def test_double_opt_in_from_form_to_active(site: tuple[Project, Any, Web]) -> None:
    project, app, web = site
    page = web.get("/subscribe")
    assert page.status_code == 200
    assert "The &lt;Daily&gt; Test" in page.text  # autoescaped
    assert "digest_csrf" in page.headers["set-cookie"] and "SameSite=strict" in page.headers["set-cookie"]
    assert page.headers["referrer-policy"] == "no-referrer"

    answer = web.subscribe_form("Reader@Example.org", name="Rea <b>der</b>", topics=["politics", "culture"])
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    row = subscriber(app, "reader@example.org")
    assert (row.status, row.topics, row.source, row.name) == ("pending", ["politics", "culture"], "web",
                                                               "Rea <b>der</b>")

    (to, link), = confirm_links(project.root)
    assert to.endswith("<Reader@example.org>")
    message = outbox_messages(project.root)[0]
    assert message["Auto-Submitted"] == "auto-generated"
    html = message.get_body(preferencelist=("html",))
    assert html is not None and "Rea &lt;b&gt;der&lt;/b&gt;" in html.get_content()
    assert "Fictional Newsroom" in html.get_content()

    shown = web.get(path_of(link))  # GET shows a button: mailbox link scanners must not confirm
    assert shown.status_code == 200 and "Confirm my subscription" in shown.text
    assert web.request("HEAD", path_of(link)).status_code == 200
    assert subscriber(app, "reader@example.org").status == "pending"
    done = web.post(path_of(link))
    assert done.status_code == 200 and "You are subscribed" in done.text
    row = subscriber(app, "reader@example.org")
    assert row.status == "active" and row.confirmed_at is not None
    # The new reader can pick topics and a time zone at once, without waiting for an edition's link.
    prefs = re.search(r'<a href="(/preferences/[^"]+)">Choose your topics, time zone and language</a>', done.text)
    assert prefs is not None and "Your preferences" in web.get(prefs.group(1)).text
    again = web.post(path_of(link))
    assert again.status_code == 200 and "already receives" in again.text
    history = [(a.old_status, a.new_status, a.actor) for a in rows(app, AuditRow)]
    assert history == [(None, "pending", "web:subscribe"), ("pending", "active", "web:confirm")]


def test_json_api_requires_json_and_answers_the_same_for_known_addresses(site: tuple[Project, Any, Web]) -> None:
    project, app, web = site
    refused = web.post("/api/subscribe", data={"email": "a@example.org"})
    assert refused.status_code == 415
    assert web.post("/api/subscribe", content=b"{", headers={"content-type": "application/json"}).status_code == 400
    bad = web.post("/api/subscribe", json={"email": "not an address"})
    assert bad.status_code == 422 and bad.json()["error"].startswith("email:")
    assert web.post("/api/subscribe", json={"email": "a@example.org", "topics": ["knitting"]}).status_code == 422
    assert web.post("/api/subscribe", json={"email": "a@example.org", "list": "nope"}).status_code == 404
    assert rows(app) == []

    first = web.post("/api/subscribe", json={"email": "a@example.org", "name": "A", "topics": ["sports"]})
    project.run("subscribers", "add", "active@example.org")
    project.run("subscribers", "suppress", "blocked@example.org")
    known = web.post("/api/subscribe", json={"email": "active@example.org"})
    blocked = web.post("/api/subscribe", json={"email": "blocked@example.org"})
    for answer in (first, known, blocked):
        assert answer.status_code == 202
        assert answer.json() == first.json()
    assert first.json()["status"] == "pending"
    # Only the new address got an email; nothing was stored for the suppressed one.
    assert [to for to, _ in confirm_links(project.root)] == ["A <a@example.org>"]
    assert {r.email for r in rows(app)} == {"a@example.org", "active@example.org"}


def test_csrf_is_required_on_the_form(site: tuple[Project, Any, Web]) -> None:
    project, app, web = site
    token = web.csrf_token()
    no_token = web.post("/subscribe", data={"email": "x@example.org"})
    assert no_token.status_code == 403
    web.client.cookies.clear()
    no_cookie = web.post("/subscribe", data={"email": "x@example.org", "csrf_token": token})
    assert no_cookie.status_code == 403
    # A token from another visitor's page does not match this visitor's cookie.
    other = Web(web.asgi)
    other_token = other.csrf_token()
    other.close()
    web.csrf_token()
    mismatched = web.post("/subscribe", data={"email": "x@example.org", "csrf_token": other_token})
    assert mismatched.status_code == 403
    forged = web.post("/subscribe", data={"email": "x@example.org", "csrf_token": web.client.cookies["digest_csrf"]})
    assert forged.status_code == 403
    assert rows(app) == [] and confirm_links(project.root) == []
    assert web.subscribe_form("x@example.org").status_code == 200
    assert len(rows(app)) == 1


def test_honeypot_pretends_success_and_stores_nothing(site: tuple[Project, Any, Web]) -> None:
    project, app, web = site
    answer = web.subscribe_form("bot@example.org", website="http://spam.example")
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert rows(app) == [] and rows(app, ThrottleRow) == [] and confirm_links(project.root) == []


def test_rate_limit_per_ip(site: tuple[Project, Any, Web]) -> None:
    _project, app, web = site
    for i in range(6):
        assert web.post("/api/subscribe", json={"email": f"p{i}@example.org"}).status_code == 202
    limited = web.post("/api/subscribe", json={"email": "p6@example.org"})
    assert limited.status_code == 429 and limited.headers["retry-after"]
    assert web.subscribe_form("p7@example.org").status_code == 429
    assert len(rows(app)) == 6
    elsewhere = Web(web.asgi, client_ip="192.0.2.7")
    assert elsewhere.post("/api/subscribe", json={"email": "p6@example.org"}).status_code == 202
    elsewhere.close()


def test_no_confirmation_storm_and_429_reveals_nothing(site: tuple[Project, Any, Web]) -> None:
    project, _app, web = site
    project.run("subscribers", "add", "known@example.org")
    ips = iter(f"198.51.100.{i}" for i in range(1, 50))

    def attempt(address: str) -> int:
        client = Web(web.asgi, client_ip=next(ips))
        try:
            return client.post("/api/subscribe", json={"email": address}).status_code
        finally:
            client.close()

    assert [attempt("victim@example.org") for _ in range(4)] == [202, 202, 429, 429]
    assert [attempt("known@example.org") for _ in range(4)] == [202, 202, 429, 429]
    assert [attempt("VICTIM@example.org")] == [429]  # case-insensitive
    assert [to for to, _ in confirm_links(project.root)] == ["victim@example.org", "victim@example.org"]


def test_single_opt_in_list_is_active_at_once_but_a_return_needs_confirmation(project: Project) -> None:
    project.run("lists", "create", "flash", "--single-opt-in")
    app = project.app()
    web = Web(create_app(app))
    try:
        answer = web.subscribe_form("quick@example.org", path="/subscribe/flash")
        assert answer.status_code == 200 and "Thank you" in answer.text
        assert subscriber(app, "quick@example.org").status == "active"
        assert confirm_links(project.root) == []
        project.run("subscribers", "unsubscribe", "quick@example.org", "--list", "flash")
        api = web.post("/api/subscribe", json={"email": "quick@example.org", "list": "flash"})
        assert api.status_code == 202 and api.json()["status"] == "subscribed"
        assert subscriber(app, "quick@example.org").status == "unsubscribed"  # not by a stranger's request
        (_, link), = confirm_links(project.root)
        assert web.post(path_of(link)).status_code == 200
        assert subscriber(app, "quick@example.org").status == "active"
    finally:
        web.close()
        app.close()


def _unsubscribe_path(app: Any, email: str) -> str:
    row = subscriber(app, email)
    return path_of(tokens.unsubscribe_url(app.settings, row.id, row.list_id, row.email))


def test_get_never_unsubscribes_and_one_click_post_does(site: tuple[Project, Any, Web]) -> None:
    project, app, web = site
    project.run("subscribers", "add", "reader@example.org")
    path = _unsubscribe_path(app, "reader@example.org")
    audits = audit_count(app)
    for _ in range(3):
        page = web.get(path)
        assert page.status_code == 200 and 'value="One-Click"' in page.text
    assert web.request("HEAD", path).status_code in (200, 405)
    assert subscriber(app, "reader@example.org").status == "active" and audit_count(app) == audits

    # Anything but the RFC 8058 body is refused and changes nothing.
    assert web.post(path, content=b"", headers={"content-type": "application/x-www-form-urlencoded"}) \
        .status_code == 400
    assert web.post(path, data={"List-Unsubscribe": "one-click"}).status_code == 400
    assert subscriber(app, "reader@example.org").status == "active"

    # Exactly what a mailbox provider sends: no cookies, no CSRF token, this body.
    bare = Web(web.asgi)
    answer = bare.post(path, content=b"List-Unsubscribe=One-Click",
                       headers={"content-type": "application/x-www-form-urlencoded"})
    bare.close()
    assert answer.status_code == 200 and "unsubscribed" in answer.text
    assert "set-cookie" not in answer.headers
    row = subscriber(app, "reader@example.org")
    assert row.status == "unsubscribed" and row.unsubscribed_at is not None
    last = rows(app, AuditRow)[-1]
    assert (last.old_status, last.new_status, last.actor) == ("active", "unsubscribed", "web:one-click")
    # Idempotent: a second click is fine and audits nothing new.
    n = audit_count(app)
    assert web.post(path, content=b"List-Unsubscribe=One-Click",
                    headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 200
    assert audit_count(app) == n
    assert "is not subscribed" in web.get(path).text


def test_multipart_one_click_and_the_pages_own_button(site: tuple[Project, Any, Web]) -> None:
    project, app, web = site
    project.run("subscribers", "add", "m@example.org")
    project.run("subscribers", "add", "p@example.org")
    multipart = web.post(_unsubscribe_path(app, "m@example.org"), files={"List-Unsubscribe": (None, "One-Click")})
    assert multipart.status_code == 200 and subscriber(app, "m@example.org").status == "unsubscribed"
    path = _unsubscribe_path(app, "p@example.org")
    form = dict(re.findall(r'name="([^"]+)" value="([^"]+)"', web.get(path).text))
    assert web.post(path, data=form).status_code == 200
    assert subscriber(app, "p@example.org").status == "unsubscribed"
    assert rows(app, AuditRow)[-1].actor == "web:unsubscribe-page"


def test_forged_tampered_and_expired_tokens_change_nothing(site: tuple[Project, Any, Web],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import itsdangerous

    project, app, web = site
    project.run("subscribers", "add", "keep@example.org")
    row = subscriber(app, "keep@example.org")
    good = _unsubscribe_path(app, "keep@example.org")
    # Change a character inside the signature, not its last one, whose low bits are base64 padding.
    tampered = good[:-5] + ("A" if good[-5] != "A" else "B") + good[-4:]
    forged = "/unsubscribe/" + itsdangerous.URLSafeTimedSerializer(
        "guessed", salt="digest.audience.unsubscribe").dumps([row.id, row.list_id, ""])
    wrong_purpose = path_of(tokens.preferences_url(app.settings, row.id, row.list_id, row.email)).replace(
        "/preferences/", "/unsubscribe/")
    # A genuine token for a row id that now belongs to another address (ids can be reused after a delete).
    other_address = path_of(tokens.unsubscribe_url(app.settings, row.id, row.list_id, "someone@example.org"))
    body = {"content": b"List-Unsubscribe=One-Click", "headers": {"content-type": "application/x-www-form-urlencoded"}}
    for path in (tampered, forged, wrong_purpose, "/unsubscribe/garbage"):
        assert web.get(path).status_code == 400
        assert web.post(path, **body).status_code == 400
    assert web.post(other_address, **body).status_code == 404
    real = time_machine(monkeypatch, hours_ago=80)
    old_confirm = path_of(tokens.confirm_url(app.settings, row.id, row.list_id, row.email))
    old_prefs = path_of(tokens.preferences_url(app.settings, row.id, row.list_id, row.email))
    real()
    assert web.post(old_confirm).status_code == 410
    assert web.get(old_prefs).status_code == 200  # 80 hours is within 90 days
    assert subscriber(app, "keep@example.org").status == "active"
    assert len(rows(app, AuditRow)) == 1


def time_machine(monkeypatch: pytest.MonkeyPatch, *, hours_ago: float) -> Any:
    import time

    import itsdangerous

    real = time.time
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp",
                        lambda self: int(real() - hours_ago * 3600))
    return monkeypatch.undo


def test_a_confirm_link_is_void_after_an_unsubscribe(site: tuple[Project, Any, Web]) -> None:
    project, app, web = site
    web.subscribe_form("flip@example.org")
    (_, link), = confirm_links(project.root)
    project.run("subscribers", "unsubscribe", "flip@example.org")
    stale = web.post(path_of(link))
    assert stale.status_code == 410
    assert subscriber(app, "flip@example.org").status == "unsubscribed"


def test_preference_centre(site: tuple[Project, Any, Web]) -> None:
    project, app, web = site
    project.run("subscribers", "add", "pref@example.org", "--topics", "politics")
    row = subscriber(app, "pref@example.org")
    path = path_of(tokens.preferences_url(app.settings, row.id, row.list_id, row.email))
    page = web.get(path)
    assert page.status_code == 200
    assert 'value="politics" checked' in page.text and 'value="sports">' in page.text
    saved = web.post(path, data={"action": "save", "topics": ["sports", "culture"], "timezone": "Asia/Tokyo",
                                 "paused": "1"})
    assert saved.status_code == 200 and "saved" in saved.text
    row = subscriber(app, "pref@example.org")
    assert (row.topics, row.timezone, row.paused, row.status) == (["sports", "culture"], "Asia/Tokyo", True,
                                                                  "active")
    bad = web.post(path, data={"action": "save", "topics": ["sports"], "timezone": "Mars/Base"})
    assert bad.status_code == 422 and "time zone" in bad.text
    assert web.post(path, data={"action": "save", "topics": ["gardening"]}).status_code == 422
    assert subscriber(app, "pref@example.org").timezone == "Asia/Tokyo"
    # Unsubscribe from the preference centre, then come back with its link.
    unsub_action = re.search(r'action="(/unsubscribe/[^"]+)"', web.get(path).text)
    assert unsub_action
    web.post(unsub_action.group(1), data={"List-Unsubscribe": "One-Click", "via": "page"})
    assert subscriber(app, "pref@example.org").status == "unsubscribed"
    assert "Subscribe again" in web.get(path).text
    assert web.post(path, data={"action": "resubscribe"}).status_code == 200
    assert subscriber(app, "pref@example.org").status == "active"


def test_names_from_the_internet_cannot_inject_headers(site: tuple[Project, Any, Web]) -> None:
    project, app, web = site
    answer = web.post("/api/subscribe", json={"email": "inj@example.org", "name": "Eve\r\nBcc: spy@example.org"})
    assert answer.status_code == 202
    assert subscriber(app, "inj@example.org").name == "Eve Bcc: spy@example.org"
    message, = outbox_messages(project.root)
    assert message["Bcc"] is None and "spy@example.org" not in str(message["To"]).split("<")[1]


def test_a_forgotten_address_is_refused_on_subscribe_without_saying_so(site: tuple[Project, Any, Web]) -> None:
    project, app, web = site
    project.run("subscribers", "add", "erased@example.org")
    project.run("subscribers", "forget", "erased@example.org", "--yes")
    fresh = web.post("/api/subscribe", json={"email": "fresh@example.org"})
    erased = web.post("/api/subscribe", json={"email": "Erased@Example.org", "name": "Back Again"})
    form = web.subscribe_form("erased@example.org")
    assert erased.status_code == fresh.status_code == 202 and erased.json() == fresh.json()
    assert form.status_code == 200 and "Check your inbox" in form.text
    assert [r.email for r in rows(app)] == ["fresh@example.org"]  # nothing stored for the erased address
    assert [to for to, _ in confirm_links(project.root)] == ["fresh@example.org"]  # and nothing sent to it


def test_bodies_over_the_limit_are_refused_even_without_content_length(site: tuple[Project, Any, Web]) -> None:
    """Content-Length can be left out (chunked): the limit must hold on what actually arrives."""
    project, app, web = site
    project.run("subscribers", "add", "big@example.org")
    path = _unsubscribe_path(app, "big@example.org")
    prefs = path_of(tokens.preferences_url(app.settings, subscriber(app, "big@example.org").id,
                                           subscriber(app, "big@example.org").list_id, "big@example.org"))
    sent: list[int] = []

    async def chunked() -> Any:
        yield b"List-Unsubscribe=One-Click&pad="
        for _ in range(64):
            sent.append(1)
            yield b"a" * 4096

    form = {"content-type": "application/x-www-form-urlencoded"}
    for target in (path, prefs, "/subscribe"):
        sent.clear()
        answer = web.post(target, content=chunked(), headers=form)
        assert answer.status_code == 413, (target, answer.status_code)
        assert len(sent) <= 64 * 1024 // 4096 + 2  # reading stopped at the limit
    row = subscriber(app, "big@example.org")
    assert (row.status, row.paused) == ("active", False) and len(rows(app)) == 1
    # The same request at a normal size works.
    assert web.post(path, content=b"List-Unsubscribe=One-Click", headers=form).status_code == 200


def test_an_unsubscribe_through_our_link_counts_in_the_last_editions_stats(site: tuple[Project, Any, Web]) -> None:
    """The List-Unsubscribe header points at digest serve, so the provider never reports these: digest itself
    records them against the last edition the reader was sent, once, however often the link is used."""
    from datetime import UTC, date, datetime, timedelta

    from digest.feedback.stats import edition_stats
    from digest.store.tables import DeliveryRow, EditionRow, EventRow

    project, app, web = site
    for address in ("one@example.org", "two@example.org", "never@example.org"):
        project.run("subscribers", "add", address)
    one, two = subscriber(app, "one@example.org"), subscriber(app, "two@example.org")
    now = datetime.now(UTC)
    with app.store.session() as session:
        editions = []
        for day in (1, 2):
            edition = EditionRow(list_id=one.list_id, date=date(2024, 5, day), window_start=now, cutoff_at=now)
            session.add(edition)
            session.flush()
            editions.append(edition.id)
            for row in (one, two):
                session.add(DeliveryRow(edition_id=edition.id, subscriber_id=row.id, email=row.email, status="sent",
                                        sent_at=now - timedelta(days=3 - day)))
    form = {"content": b"List-Unsubscribe=One-Click", "headers": {"content-type": "application/x-www-form-urlencoded"}}
    for _ in range(2):
        assert web.post(_unsubscribe_path(app, "one@example.org"), **form).status_code == 200
    page = _unsubscribe_path(app, "two@example.org")
    assert web.post(page, data={"List-Unsubscribe": "One-Click", "via": "page"}).status_code == 200
    assert web.post(_unsubscribe_path(app, "never@example.org"), **form).status_code == 200
    with app.store.session() as session:
        older, latest = (edition_stats(session, e) for e in editions)
        assert (older.counts["unsubscribed"], latest.counts["unsubscribed"]) == (0, 2)
        events = session.scalars(select(EventRow).order_by(EventRow.id)).all()
        assert [(e.type, e.edition_id, e.subscriber_id, e.provider) for e in events] == [
            ("unsubscribed", editions[1], one.id, "digest"), ("unsubscribed", editions[1], two.id, "digest")]
    assert {subscriber(app, a).status for a in ("one@example.org", "two@example.org", "never@example.org")} == {
        "unsubscribed"}


def test_two_subscribe_requests_racing_for_one_address_make_one_subscriber(project: Project) -> None:
    """A double-clicked Subscribe button: two transactions both find no subscriber and both insert one. The loser
    (blocked on the unique index on PostgreSQL, on the write lock on SQLite) must treat the address as known rather
    than fail with an error page."""
    import threading
    import time

    from digest.audience import signup
    from digest.audience.lists import get_list

    project.run("lists", "create", "daily")
    app = project.app()
    first = app.store.new_session()
    try:
        first.begin()
        won = signup.subscribe(first, get_list(first, "daily"), "race@example.org")
        assert won.kind == "pending" and won.confirm is not None
        outcome: dict[str, Any] = {}

        def second() -> None:
            try:
                with app.store.session() as session:
                    outcome["lost"] = signup.subscribe(session, get_list(session, "daily"), "race@example.org")
            except Exception as exc:  # noqa: BLE001  (reported below, with the test's own assertion)
                outcome["error"] = exc

        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.5)  # the second transaction is now waiting for the first
        first.commit()
        thread.join(timeout=30)
    finally:
        first.close()
    assert "error" not in outcome, outcome.get("error")
    lost = outcome["lost"]
    assert lost.kind == "pending" and lost.confirm is not None and lost.confirm[0] == won.confirm[0]
    assert [r.email for r in rows(app)] == ["race@example.org"] and audit_count(app) == 1
    app.close()
