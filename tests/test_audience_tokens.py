"""Signed links: purpose separation, tampering, forgery, expiry, key rotation, binding to the address."""

from __future__ import annotations

import time
from pathlib import Path

import itsdangerous
import pytest

from digest.audience import tokens
from digest.audience.tokens import BadToken, read_token
from digest.config import Settings, load_settings
from digest.errors import ConfigError


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(cwd=tmp_path, environ={"DIGEST_SECRET_KEY": "current-key",
                                                "DIGEST_BASE_URL": "https://news.example.org/"})


def _token(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _issued_hours_ago(monkeypatch: pytest.MonkeyPatch, hours: float) -> None:
    real = time.time
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp",
                        lambda self: int(real() - hours * 3600))


def test_urls_live_under_base_url_and_round_trip(settings: Settings) -> None:
    url = tokens.unsubscribe_url(settings, 41, 7, "Reader@Example.org")
    assert url.startswith("https://news.example.org/unsubscribe/")
    data = read_token(settings, "unsubscribe", _token(url))
    assert (data.subscriber_id, data.list_id) == (41, 7)
    assert data.email_check == tokens.email_check("reader@example.org")
    assert tokens.preferences_url(settings, 1, 2).startswith("https://news.example.org/preferences/")
    assert tokens.confirm_url(settings, 1, 2).startswith("https://news.example.org/confirm/")


def test_a_token_only_works_for_its_own_purpose(settings: Settings) -> None:
    confirm = _token(tokens.confirm_url(settings, 1, 2, "a@example.org"))
    with pytest.raises(BadToken):
        read_token(settings, "unsubscribe", confirm)
    with pytest.raises(BadToken):
        read_token(settings, "preferences", confirm)
    assert read_token(settings, "confirm", confirm).subscriber_id == 1


def test_tampered_and_forged_tokens_are_refused(settings: Settings) -> None:
    token = _token(tokens.unsubscribe_url(settings, 5, 3, "a@example.org"))
    payload, stamp, signature = token.split(".")
    # Point the payload at another subscriber but keep the signature: refused.
    other = _token(tokens.unsubscribe_url(settings, 6, 3, "a@example.org")).split(".")[0]
    with pytest.raises(BadToken, match="not valid"):
        read_token(settings, "unsubscribe", f"{other}.{stamp}.{signature}")
    # Flip the first character: the last one of a base64 signature carries padding bits that
    # decoding ignores, so changing it can leave the signature bytes as they were.
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    with pytest.raises(BadToken):
        read_token(settings, "unsubscribe", f"{payload}.{stamp}.{flipped}")
    forged = itsdangerous.URLSafeTimedSerializer("a guess", salt="digest.audience.unsubscribe").dumps([5, 3, ""])
    with pytest.raises(BadToken):
        read_token(settings, "unsubscribe", forged)
    for junk in ("", "abc", "...", token[:-3]):
        with pytest.raises(BadToken):
            read_token(settings, "unsubscribe", junk)


def test_confirm_links_expire_after_confirm_max_age_hours(settings: Settings,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _issued_hours_ago(monkeypatch, 71)
    fresh = _token(tokens.confirm_url(settings, 1, 1))
    _issued_hours_ago(monkeypatch, 73)
    stale = _token(tokens.confirm_url(settings, 1, 1))
    monkeypatch.undo()
    assert read_token(settings, "confirm", fresh).subscriber_id == 1
    with pytest.raises(BadToken) as info:
        read_token(settings, "confirm", stale)
    assert info.value.expired


def test_preference_links_expire_but_unsubscribe_links_never_do(settings: Settings,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _issued_hours_ago(monkeypatch, 24 * 91)
    prefs = _token(tokens.preferences_url(settings, 1, 1))
    _issued_hours_ago(monkeypatch, 24 * 365 * 5)
    unsub = _token(tokens.unsubscribe_url(settings, 1, 1))
    monkeypatch.undo()
    with pytest.raises(BadToken) as info:
        read_token(settings, "preferences", prefs)
    assert info.value.expired
    assert read_token(settings, "unsubscribe", unsub).subscriber_id == 1
    shorter = settings.replace(preferences_max_age_days=200)
    assert read_token(shorter, "preferences", prefs).subscriber_id == 1


def test_rotated_keys_keep_old_links_working_via_fallbacks(settings: Settings) -> None:
    old_link = _token(tokens.unsubscribe_url(settings, 9, 4))
    rotated = settings.replace(secret_key="brand-new-key", secret_key_fallbacks=["current-key"])
    assert read_token(rotated, "unsubscribe", old_link).subscriber_id == 9
    # New links are signed with the new key: the old key alone cannot read them.
    new_link = _token(tokens.unsubscribe_url(rotated, 9, 4))
    with pytest.raises(BadToken):
        read_token(settings, "unsubscribe", new_link)
    assert read_token(rotated, "unsubscribe", new_link).subscriber_id == 9
    # Once the fallback is dropped, links signed with it stop working.
    with pytest.raises(BadToken):
        read_token(rotated.replace(secret_key_fallbacks=[]), "unsubscribe", old_link)


def test_missing_secret_key_is_a_clear_config_error(tmp_path: Path) -> None:
    bare = load_settings(cwd=tmp_path, environ={})
    with pytest.raises(ConfigError, match="secret_key is not set.*DIGEST_SECRET_KEY"):
        tokens.unsubscribe_url(bare, 1, 1)
