"""Fetching a feed URL: one GET with the configured timeout, redirects followed, the size capped."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from digest.errors import DigestError

MAX_FEED_BYTES = 20_000_000
USER_AGENT = "digest (newsletter digest builder; feed reader)"


class FetchError(DigestError):
    """The URL could not be fetched; the message says why (status, timeout, connection)."""


@dataclass
class Fetched:
    data: bytes
    url: str  # after redirects: what relative links resolve against
    content_type: str | None


def fetch(url: str, *, timeout: float, max_bytes: int = MAX_FEED_BYTES) -> Fetched:
    try:
        with (httpx.Client(follow_redirects=True, timeout=timeout, headers={"User-Agent": USER_AGENT}) as client,
              client.stream("GET", url) as response):
            if response.status_code >= 400:
                raise FetchError(f"{url}: HTTP {response.status_code} {response.reason_phrase}".rstrip())
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(f"{url}: larger than {max_bytes // 1_000_000} MB; not a feed we read")
                chunks.append(chunk)
            return Fetched(b"".join(chunks), str(response.url), response.headers.get("content-type"))
    except httpx.TimeoutException:
        raise FetchError(f"{url}: no answer within {timeout:g} s (feed_timeout)") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from None
