"""POST /webhooks/sendgrid: signed payloads from a key pair made here, over httpx in-process and over a real
uvicorn server on 127.0.0.1. Anything refused must leave the store exactly as it was."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from digest.app import App
from digest.audience import lifecycle
from digest.errors import ConfigError
from digest.feedback import sendgrid
from digest.web.webhooks import webhook_routes
from tests.audience_support import loopback_socket, serve_on_loopback
from tests.feedback_support import (
    Signer,
    World,
    body_of,
    build_world,
    settings_for,
    sg_event,
    snapshot,
    status_of,
)

URL = "http://127.0.0.1/webhooks/sendgrid"


@pytest.fixture
def signer() -> Signer:
    return Signer()


@pytest.fixture
def app(tmp_path: Path, db_url: str, signer: Signer) -> Iterator[App]:
    digest_app = App(settings_for(tmp_path, db_url, sendgrid_webhook_public_key=signer.public_b64,
                                  webhook_max_body_bytes=20_000))
    yield digest_app
    digest_app.close()


@pytest.fixture
def world(app: App) -> World:
    with app.store.session() as s:
        return build_world(s, app.settings)


def post(app: App, body: bytes | AsyncIterator[bytes], headers: dict[str, str]) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=Starlette(routes=webhook_routes(app)))
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.post(URL, content=body, headers=headers)

    return asyncio.run(go())


def state(app: App) -> dict[str, Any]:
    with app.store.session() as s:
        return snapshot(s)


def bounce_batch(world: World) -> list[dict[str, Any]]:
    return [sg_event("delivered", "bob@example.org", edition_id=world.editions[0], subscriber_id=world.sub("bob@daily")),
            sg_event("bounce", "alice@example.org", edition_id=world.editions[0],
                     subscriber_id=world.sub("alice@daily"), type="bounce", reason="550 5.1.1 unknown user")]


def test_a_correctly_signed_batch_is_applied(app: App, world: World, signer: Signer) -> None:
    body = body_of(bounce_batch(world))
    response = post(app, body, signer.headers(body))
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 2, "recorded": 2, "duplicates": 0, "status_changes": 2, "suppressed": 1}
    with app.store.session() as s:
        assert status_of(s, world.sub("alice@daily")) == "bounced"
        assert status_of(s, world.sub("alice@weekly")) == "bounced"
        assert lifecycle.is_suppressed(s, "alice@example.org")
    # SendGrid retries a batch it thinks failed; a fresh signature on the same events changes nothing.
    before = state(app)
    again = post(app, body, signer.headers(body))
    assert again.status_code == 200 and again.json()["duplicates"] == 2
    assert state(app) == before


def test_the_pem_form_of_the_key_works_too(app: App, world: World, signer: Signer) -> None:
    app.settings = app.settings.replace(sendgrid_webhook_public_key=signer.public_pem)
    body = body_of(bounce_batch(world))
    assert post(app, body, signer.headers(body)).status_code == 200


def _flip(body: bytes) -> bytes:
    index = body.index(b"alice")
    return body[:index] + b"b" + body[index + 1:]


@pytest.mark.parametrize("tamper", ["flipped byte", "wrong key", "stale timestamp", "future timestamp",
                                    "no signature", "no timestamp", "garbage signature", "unconfigured key"])
def test_unverifiable_requests_are_refused_and_change_nothing(app: App, world: World, signer: Signer,
                                                              tamper: str) -> None:
    body = body_of(bounce_batch(world))
    headers = signer.headers(body)
    if tamper == "flipped byte":
        body = _flip(body)
    elif tamper == "wrong key":
        headers = Signer().headers(body)
    elif tamper == "stale timestamp":
        headers = signer.headers(body, timestamp=int(time.time()) - 1200)
    elif tamper == "future timestamp":
        headers = signer.headers(body, timestamp=int(time.time()) + 1200)
    elif tamper == "no signature":
        del headers[sendgrid.SIGNATURE_HEADER]
    elif tamper == "no timestamp":
        del headers[sendgrid.TIMESTAMP_HEADER]
    elif tamper == "garbage signature":
        headers[sendgrid.SIGNATURE_HEADER] = "not base64 at all!"
    elif tamper == "unconfigured key":
        app.settings = app.settings.replace(sendgrid_webhook_public_key="")
    before = state(app)
    response = post(app, body, headers)
    assert response.status_code == 403
    assert "alice" not in response.text
    assert state(app) == before


def test_a_timestamp_inside_the_tolerance_is_accepted(app: App, world: World, signer: Signer) -> None:
    body = body_of(bounce_batch(world))
    assert post(app, body, signer.headers(body, timestamp=int(time.time()) - 450)).status_code == 200


def test_oversized_bodies_get_413_even_without_content_length(app: App, world: World, signer: Signer) -> None:
    big = body_of([sg_event("open", f"reader{n}@example.org") for n in range(400)])
    assert len(big) > app.settings.webhook_max_body_bytes
    before = state(app)
    assert post(app, big, signer.headers(big)).status_code == 413
    chunks_read = []

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 4096):
            chunks_read.append(start)
            yield big[start:start + 4096]

    assert post(app, chunked(), signer.headers(big)).status_code == 413
    # Reading stopped at the limit instead of taking the whole body first.
    limit = app.settings.webhook_max_body_bytes
    assert len(big) > 2 * limit
    assert len(chunks_read) <= limit // 4096 + 2
    assert state(app) == before


def test_a_signed_body_that_is_not_an_event_array_is_a_400(app: App, world: World, signer: Signer) -> None:
    before = state(app)
    for body in (b"{not json", b'{"event": "bounce"}', b'[{"event": "open"}, 3]'):
        response = post(app, body, signer.headers(body))
        assert response.status_code == 400, body
    assert state(app) == before


def test_verify_rejects_keys_of_the_wrong_kind() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    other_curve = ec.generate_private_key(ec.SECP384R1()).public_key()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    for key in (other_curve, rsa_key):
        pem = key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
        with pytest.raises(ConfigError, match="P-256"):
            sendgrid.load_public_key(pem)
    with pytest.raises(ConfigError, match="sendgrid_webhook_public_key"):
        sendgrid.load_public_key("bm90IGEga2V5")


def test_check_timestamp_bounds() -> None:
    now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    ts = int(now.timestamp())
    sendgrid.check_timestamp(str(ts - 600), now=now, tolerance_seconds=600)
    with pytest.raises(sendgrid.WebhookRejected):
        sendgrid.check_timestamp(str(ts - 601), now=now, tolerance_seconds=600)
    with pytest.raises(sendgrid.WebhookRejected):
        sendgrid.check_timestamp("yesterday", now=now - timedelta(days=1), tolerance_seconds=600)


# --- over a real HTTP server ---------------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path, signer: Signer) -> Iterator[tuple[str, App]]:
    digest_app = App(settings_for(tmp_path, f"sqlite:///{tmp_path / 'served.db'}",
                                  sendgrid_webhook_public_key=signer.public_b64))
    with serve_on_loopback(Starlette(routes=webhook_routes(digest_app)), loopback_socket()) as base:
        yield f"{base}/webhooks/sendgrid", digest_app
    digest_app.close()


def test_over_a_real_server_on_loopback(served: tuple[str, App], signer: Signer) -> None:
    url, digest_app = served
    with digest_app.store.session() as s:
        world = build_world(s, digest_app.settings)
    body = body_of([sg_event("spamreport", "carol@example.org", edition_id=world.editions[0],
                             subscriber_id=world.sub("carol@daily"))])
    refused = httpx.post(url, content=body + b" ", headers=signer.headers(body))
    assert refused.status_code == 403
    with digest_app.store.session() as s:
        assert status_of(s, world.sub("carol@daily")) == "active"
    accepted = httpx.post(url, content=body, headers=signer.headers(body))
    assert accepted.status_code == 200 and accepted.json()["recorded"] == 1
    with digest_app.store.session() as s:
        assert status_of(s, world.sub("carol@daily")) == "complained"
    assert httpx.get(url).status_code == 405


def test_mounted_on_the_public_app(tmp_path: Path, db_url: str, signer: Signer) -> None:
    """`digest serve`'s app (audience's public.create_app) carries the webhook with the same guarantees."""
    from digest.web.public import create_app

    digest_app = App(settings_for(tmp_path, db_url, sendgrid_webhook_public_key=signer.public_b64,
                                  secret_key="feedback-test-secret-" + "x" * 24))
    try:
        with digest_app.store.session() as s:
            world = build_world(s, digest_app.settings)
        body = body_of(bounce_batch(world))

        async def go(headers: dict[str, str]) -> httpx.Response:
            transport = httpx.ASGITransport(app=create_app(digest_app))
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
                return await client.post("/webhooks/sendgrid", content=body, headers=headers)

        before = state(digest_app)
        assert asyncio.run(go({"Content-Type": "application/json"})).status_code == 403
        assert state(digest_app) == before
        assert asyncio.run(go(signer.headers(body))).status_code == 200
        with digest_app.store.session() as s:
            assert status_of(s, world.sub("alice@weekly")) == "bounced"
    finally:
        digest_app.close()
