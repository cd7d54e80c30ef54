"""Editions rendered ahead of the tab's fetch (digest.web.preview_warm), with a stand-in for build_edition."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, cast

import pytest

from digest.errors import DigestError
from digest.web.preview_editions import PreviewEdition
from digest.web.preview_live import ChangeHub
from digest.web.preview_warm import EditionKey, WarmEditions

KEY = EditionKey("daily", date(2031, 3, 4))


class Builds:
    """Counts builds; each returns a distinct fake edition (only its identity matters here)."""

    def __init__(self) -> None:
        self.calls: list[EditionKey] = []
        self.fail: Exception | None = None
        self.gate = threading.Event()
        self.gate.set()
        self._lock = threading.Lock()

    def __call__(self, key: EditionKey) -> PreviewEdition:
        self.gate.wait(5)
        with self._lock:
            self.calls.append(key)
            n = len(self.calls)
        if self.fail is not None:
            raise self.fail
        return cast(PreviewEdition, f"edition {n} of {key.list_name}")


def _run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), timeout=20))  # type: ignore[arg-type]


def test_the_fetch_after_a_change_takes_the_render_made_ahead_and_two_fetches_share_it() -> None:
    builds = Builds()
    warm = WarmEditions(builds)
    hub = ChangeHub()
    hub.on_publish(warm.changed)

    async def main() -> None:
        assert await warm.get(KEY, 0) == "edition 1 of daily"  # the page's first look: rendered as before
        builds.gate.clear()  # the render made ahead is still under way when the tab asks
        event = hub.publish("template", ["/x/_article.mjml.j2"])
        frame = asyncio.create_task(warm.get(KEY, event.version))
        checks = asyncio.create_task(warm.get(KEY, event.version))
        await asyncio.sleep(0.05)
        builds.gate.set()
        assert await frame == await checks == "edition 2 of daily"
        assert len(builds.calls) == 2 and warm.answered_ahead == 2
        # Another version (a fetch from before the change, or a later one) renders afresh.
        assert await warm.get(KEY, event.version - 1) == "edition 3 of daily"
        assert await warm.get(KEY, None) == "edition 4 of daily"

    _run(main)


def test_a_render_made_ahead_is_used_only_shortly_after_its_change() -> None:
    builds = Builds()
    now = [100.0]
    warm = WarmEditions(builds, fresh_for=5.0, clock=lambda: now[0])
    hub = ChangeHub()
    hub.on_publish(warm.changed)

    async def main() -> None:
        await warm.get(KEY, None)
        event = hub.publish("articles")
        await asyncio.sleep(0.05)
        now[0] += 6.0  # e.g. the page reopened later at the same version: what changed since is unknown
        assert await warm.get(KEY, event.version) == "edition 3 of daily"
        assert warm.answered_ahead == 0

    _run(main)


def test_only_the_recent_editions_are_rendered_again_newest_first() -> None:
    builds = Builds()
    warm = WarmEditions(builds, keep=2)
    hub = ChangeHub()
    hub.on_publish(warm.changed)
    keys = [EditionKey("daily", date(2031, 3, d)) for d in (1, 2, 3)]

    async def main() -> None:
        for key in keys:
            await warm.get(key, None)
        builds.calls.clear()
        event = hub.publish("config")
        await warm.get(keys[2], event.version)
        await warm.get(keys[1], event.version)
        assert builds.calls == [keys[2], keys[1]] and warm.answered_ahead == 2

    _run(main)


def test_a_template_error_reaches_the_fetch_as_a_fresh_render_would_raise_it() -> None:
    builds = Builds()
    warm = WarmEditions(builds)
    hub = ChangeHub()
    hub.on_publish(warm.changed)

    async def main() -> None:
        await warm.get(KEY, None)
        builds.fail = DigestError("_article.mjml.j2, line 3: unexpected 'endif'")
        event = hub.publish("template")
        with pytest.raises(DigestError, match="line 3"):
            await warm.get(KEY, event.version)

    _run(main)


def test_a_newer_change_drops_the_older_render_and_an_older_fetch_still_gets_an_edition() -> None:
    builds = Builds()
    warm = WarmEditions(builds, keep=2)
    hub = ChangeHub()
    hub.on_publish(warm.changed)
    other = EditionKey("daily", date(2031, 3, 5))

    async def main() -> None:
        await warm.get(other, None)
        await warm.get(KEY, None)
        builds.gate.clear()
        first = hub.publish("template")  # renders KEY, then `other`
        older: asyncio.Task[Any] = asyncio.create_task(warm.get(other, first.version))
        await asyncio.sleep(0.02)
        second = hub.publish("template")  # `other`'s render for the first change is dropped unstarted
        builds.gate.set()
        assert str(await older).startswith("edition")  # rendered for it instead of hanging or failing
        assert str(await warm.get(other, second.version)).startswith("edition")

    _run(main)


def test_a_change_published_outside_the_servers_loop_warms_nothing() -> None:
    builds = Builds()
    warm = WarmEditions(builds)
    hub = ChangeHub()
    hub.on_publish(warm.changed)
    hub.publish("articles")  # e.g. a command in a test: no loop, no render, no error
    assert builds.calls == []
