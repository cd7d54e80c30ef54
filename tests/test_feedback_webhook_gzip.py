"""POST /webhooks/sendgrid with `Content-Encoding: gzip`: accepted with a signature over the compressed bytes or
over the JSON they carry; the size limit holds for the decompressed body, so a small compressed bomb is refused;
anything refused leaves the store as it was."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from digest.app import App
from digest.audience import lifecycle
from digest.web.webhooks import webhook_routes
from tests.feedback_support import Signer, World, body_of, build_world, settings_for, sg_event, snapshot

LIMIT = 20_000


@pytest.fixture
def signer() -> Signer:
    return Signer()


@pytest.fixture
def app(tmp_path: Path, db_url: str, signer: Signer) -> Iterator[App]:
    digest_app = App(settings_for(tmp_path, db_url, sendgrid_webhook_public_key=signer.public_b64,
                                  webhook_max_body_bytes=LIMIT))
    yield digest_app
    digest_app.close()


@pytest.fixture
def world(app: App) -> World:
    with app.store.session() as s:
        return build_world(s, app.settings)


def post(app: App, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=Starlette(routes=webhook_routes(app)))
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.post("http://127.0.0.1/webhooks/sendgrid", content=body, headers=headers)

    return asyncio.run(go())


def state(app: App) -> dict[str, object]:
    with app.store.session() as s:
        return snapshot(s)


def _bounce(world: World) -> bytes:
    return body_of([sg_event("bounce", "alice@example.org", edition_id=world.editions[0],
                             subscriber_id=world.sub("alice@daily"), type="bounce", reason="550 5.1.1 unknown")])


@pytest.mark.parametrize("signed", ["decompressed", "compressed"])
def test_a_gzipped_batch_is_accepted_whichever_bytes_were_signed(app: App, world: World, signer: Signer,
                                                                 signed: str) -> None:
    body = _bounce(world)
    packed = gzip.compress(body)
    headers = {**signer.headers(body if signed == "decompressed" else packed), "Content-Encoding": "gzip"}
    response = post(app, packed, headers)
    assert response.status_code == 200, response.text
    assert response.json()["suppressed"] == 1
    with app.store.session() as s:
        assert lifecycle.is_suppressed(s, "alice@example.org")


def test_a_gzipped_batch_with_a_wrong_signature_is_refused(app: App, world: World, signer: Signer) -> None:
    body = _bounce(world)
    other = gzip.compress(body.replace(b"alice", b"carol"))
    before = state(app)
    response = post(app, other, {**signer.headers(body), "Content-Encoding": "gzip"})
    assert response.status_code == 403 and state(app) == before


def test_a_small_compressed_bomb_is_refused_by_its_decompressed_size(app: App, world: World,
                                                                     signer: Signer) -> None:
    # A signed, valid JSON array padded with whitespace: 5 MB inflated from a few kilobytes on the wire.
    body = _bounce(world)[:-1] + b" " * 5_000_000 + b"]"
    packed = gzip.compress(body, compresslevel=9)
    assert len(packed) < LIMIT < len(body)
    before = state(app)
    for signed in (body, packed):
        response = post(app, packed, {**signer.headers(signed), "Content-Encoding": "gzip"})
        assert response.status_code == 413 and "decompressed" in response.json()["error"]
    assert state(app) == before


def test_a_body_just_under_the_limit_once_decompressed_is_accepted(app: App, world: World, signer: Signer) -> None:
    body = _bounce(world)
    body = body[:-1] + b" " * (LIMIT - len(body)) + b"]"
    assert len(body) == LIMIT
    response = post(app, gzip.compress(body), {**signer.headers(body), "Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text


def test_broken_gzip_and_unknown_encodings_are_refused(app: App, world: World, signer: Signer) -> None:
    body = _bounce(world)
    before = state(app)
    truncated = gzip.compress(body)[:-12]
    assert post(app, truncated, {**signer.headers(truncated), "Content-Encoding": "gzip"}).status_code == 400
    assert post(app, b"not gzip at all", {**signer.headers(body), "Content-Encoding": "gzip"}).status_code == 400
    assert post(app, body, {**signer.headers(body), "Content-Encoding": "br"}).status_code == 415
    assert state(app) == before
