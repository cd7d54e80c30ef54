"""Editions rendered ahead: on a change event the preview renders the editions its tabs were looking at again,
so the frame's fetch that follows the event (and the checks' after it) takes the render under way or done
instead of starting one, and two fetches of one edition never render it twice.

Only a fetch that answers the change (an open tab's, ``?live=1&v=N`` for change N) is answered ahead, and only
for a few seconds after the change. Anything else renders as before: a page that opens after a desk action,
say, may be newer than the last change the preview noticed, and is never handed that change's render; nor is
a page opened later, after a change the preview cannot see (a subscriber's topics edited elsewhere). An open
tab always hears of the next change, so the render it got is never the last word.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from starlette.concurrency import run_in_threadpool

from digest.web.preview_editions import PreviewEdition
from digest.web.preview_live import ChangeEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EditionKey:
    """One edition as one reader sees it: what ``build_edition`` is asked for by the frame and the checks."""

    list_name: str
    day: date
    subscriber: str | None = None
    subject_index: int | None = None


@dataclass
class _Ahead:
    version: int
    started: float
    result: asyncio.Future[PreviewEdition]


class WarmEditions:
    """``get`` an edition for a tab's version; ``changed`` (a ``ChangeHub`` listener) renders the recent ones."""

    def __init__(self, build: Callable[[EditionKey], PreviewEdition], *, keep: int = 3, fresh_for: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._build = build
        self._keep = keep
        self._fresh_for = fresh_for
        self._clock = clock
        self._recent: OrderedDict[EditionKey, None] = OrderedDict()
        self._ahead: dict[EditionKey, _Ahead] = {}
        self.answered_ahead = 0  # fetches served from a render made ahead (tests read it)

    def _touch(self, key: EditionKey) -> None:
        self._recent[key] = None
        self._recent.move_to_end(key)
        while len(self._recent) > self._keep:
            old, _ = self._recent.popitem(last=False)
            self._ahead.pop(old, None)

    async def get(self, key: EditionKey, version: int | None) -> PreviewEdition:
        self._touch(key)
        ahead = self._ahead.get(key)
        if (ahead is not None and version is not None and ahead.version == version
                and self._clock() - ahead.started <= self._fresh_for):
            try:
                # shield: a tab that goes away mid-render must not cancel it for the others waiting on it.
                edition = await asyncio.shield(ahead.result)
            except asyncio.CancelledError:
                if not ahead.result.cancelled():
                    raise  # this fetch itself was cancelled
                # else: dropped unstarted for a newer change; render this (older) version as before
            else:
                self.answered_ahead += 1
                return edition
        return await run_in_threadpool(self._build, key)

    def changed(self, event: ChangeEvent) -> None:
        """Starts rendering the recently viewed editions, newest first, one at a time (a render running beside
        the one the tab waits for would only slow it down on a small machine)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # published outside the server's loop (a test, a command): nothing to warm
            return
        keys = list(reversed(self._recent))
        if not keys:
            return
        now = self._clock()
        jobs: list[tuple[EditionKey, asyncio.Future[PreviewEdition]]] = []
        for key in keys:
            future: asyncio.Future[PreviewEdition] = loop.create_future()
            # Retrieved here so an error nobody asked for (a template error: the tab renders it itself) is
            # not logged as "never retrieved".
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._ahead[key] = _Ahead(event.version, now, future)
            jobs.append((key, future))
        loop.create_task(self._render(jobs))

    async def _render(self, jobs: list[tuple[EditionKey, asyncio.Future[PreviewEdition]]]) -> None:
        for i, (key, future) in enumerate(jobs):
            current = self._ahead.get(key)
            if current is None or current.result is not future:
                future.cancel()  # a newer change (or the tab moved on): its render would be thrown away
                continue
            try:
                edition = await run_in_threadpool(self._build, key)
            except asyncio.CancelledError:  # the server stops: nobody may wait forever
                for _, left in jobs[i:]:
                    left.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - handed to whoever awaits it, as a fresh render would raise
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(edition)
