"""Live reload for the preview: notice template, config and article changes, and tell every open tab.

Files are watched with watchfiles (inotify and friends) in a background task; the database cannot be watched,
so it is polled cheaply (count and newest ``updated_at`` of the articles). Each change bumps a version number
and is pushed to the open tabs over Server-Sent Events, and to the hub's in-process listeners (the preview
renders the editions being looked at again at once, so a tab's fetch after the event finds the render under
way or done).

How soon a save is noticed is watchfiles' ``step``: the rust watcher sleeps a step, and yields once a step
passes with no new change, so a save is reported one to two steps after it lands. ``debounce`` caps how long a
burst of changes (a ``git checkout``) is collected into one batch.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import anyio
from sqlalchemy import func, select
from watchfiles import Change, awatch

from digest.store.db import Store
from digest.store.tables import ArticleRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadTuning:
    """How a change reaches the open tabs. The defaults are the fast path; ``LEGACY_RELOAD`` is the path before
    it (kept so the benchmark can run both side by side)."""

    step_ms: int = 5  # a save is reported 5-10 ms after it lands (was 50-100 ms)
    debounce_ms: int = 50
    warm: bool = True  # render the viewed editions again on the change event, before the tab asks
    swap: bool = True  # the tab replaces the frame's document in place (no navigation), then loads the checks


FAST_RELOAD = ReloadTuning()
LEGACY_RELOAD = ReloadTuning(step_ms=50, debounce_ms=150, warm=False, swap=False)


@dataclass(frozen=True)
class ChangeEvent:
    version: int
    reason: str  # "template", "config" or "articles"
    paths: tuple[str, ...] = ()

    def to_sse(self) -> str:
        data = json.dumps({"version": self.version, "reason": self.reason, "paths": list(self.paths)})
        return f"id: {self.version}\nevent: change\ndata: {data}\n\n"


class ChangeHub:
    """Fans change events out to every connected tab. Each tab gets its own small queue."""

    def __init__(self) -> None:
        self.version = 0
        self._queues: set[asyncio.Queue[ChangeEvent | None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._callbacks: list[Callable[[ChangeEvent], None]] = []
        self.closed = False

    def on_publish(self, callback: Callable[[ChangeEvent], None]) -> None:
        """``callback(event)`` on every change, in the publisher's thread, after the tabs were told."""
        self._callbacks.append(callback)

    def publish(self, reason: str, paths: Iterable[str] = ()) -> ChangeEvent:
        self.version += 1
        event = ChangeEvent(self.version, reason, tuple(paths))
        for queue in list(self._queues):
            if queue.full():  # a stalled tab only needs to know "something changed"
                _drain(queue)
            queue.put_nowait(event)
        for callback in list(self._callbacks):
            try:
                callback(event)
            except Exception:  # a listener's failure must not stop the tabs' reloads
                log.exception("preview: a change listener failed")
        return event

    def close(self) -> None:
        self.closed = True
        for queue in list(self._queues):
            _drain(queue)
            queue.put_nowait(None)

    def close_threadsafe(self) -> None:
        """``close`` from a signal handler or another thread: ends every stream so a server can stop at once."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.close)
        else:
            self.closed = True

    async def stream(self, heartbeat: float = 15.0) -> AsyncGenerator[str, None]:
        """SSE text for one tab: a hello with the current version, then one event per change."""
        self._loop = asyncio.get_running_loop()
        queue: asyncio.Queue[ChangeEvent | None] = asyncio.Queue(maxsize=16)
        self._queues.add(queue)
        try:
            yield f"retry: 1000\nevent: hello\ndata: {json.dumps({'version': self.version})}\n\n"
            while not self.closed:
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=heartbeat)
                except TimeoutError:
                    yield ": keep-alive\n\n"  # proxies and browsers drop silent connections
                    continue
                if event is None:
                    return
                yield event.to_sse()
        finally:
            self._queues.discard(queue)

    @property
    def listeners(self) -> int:
        return len(self._queues)


def _drain(queue: asyncio.Queue[ChangeEvent | None]) -> None:
    while not queue.empty():
        queue.get_nowait()


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


class FileWatcher:
    """Watches the templates folder (recursively) and the config file; tells the hub which of the two changed.

    The config file's folder is watched without recursion: it is often the project root, and a recursive watch
    there would cover virtualenvs, node_modules and the outbox. Editors that save by renaming a temporary file
    replace the file's inode, which is why the folder is watched rather than the file itself.
    """

    def __init__(self, hub: ChangeHub, templates_dir: Path, config_file: Path,
                 fallback_templates: Path | None = None, tuning: ReloadTuning = FAST_RELOAD) -> None:
        self.hub = hub
        self.tuning = tuning
        self.templates_dir = templates_dir.resolve()
        self.config_file = config_file.resolve()
        self.fallback_templates = fallback_templates.resolve() if fallback_templates else None

    def template_root(self) -> Path | None:
        """The folder templates are read from now: the project's, else the built-in ones."""
        if self.templates_dir.is_dir():
            return self.templates_dir
        if self.fallback_templates is not None and self.fallback_templates.is_dir():
            return self.fallback_templates
        return None

    def flat_roots(self) -> list[Path]:
        """Folders watched without recursion: the config file's, and where the templates folder may appear."""
        roots = {self.config_file.parent}
        if not self.templates_dir.is_dir():
            parent = self.templates_dir.parent
            while not parent.exists() and parent != parent.parent:
                parent = parent.parent
            roots.add(parent)
        return sorted(r for r in roots if r.is_dir())

    def classify(self, path: str) -> str | None:
        p = Path(path)
        if p == self.config_file:
            return "config"
        if p.name.startswith(".") or p.name.endswith("~"):  # editor swap and backup files
            return None
        if p == self.templates_dir:
            return "templates-folder"
        root = self.template_root()
        if root is not None and _is_within(p, root):
            return "template"
        return None

    def watch_filter(self, change: Change, path: str) -> bool:
        return self.classify(path) is not None

    async def run(self, stop: anyio.Event) -> None:
        while not stop.is_set():
            # One event per generation of watchers: setting it stops their threads within a step. (watchfiles
            # sets the event it was given when cancelled, so the caller's ``stop`` must never be handed to it.)
            generation = anyio.Event()
            async with anyio.create_task_group() as group:
                group.start_soon(_relay, stop, generation)
                root = self.template_root()
                if root is not None:
                    group.start_soon(self._watch, [root], True, generation)
                group.start_soon(self._watch, self.flat_roots(), False, generation)
                await generation.wait()
                group.cancel_scope.cancel()

    async def _watch(self, roots: list[Path], recursive: bool, generation: anyio.Event) -> None:
        if not roots:
            return
        async for changes in awatch(*roots, watch_filter=self.watch_filter, stop_event=generation,
                                    debounce=self.tuning.debounce_ms, step=self.tuning.step_ms,
                                    recursive=recursive):
            reasons: dict[str, list[str]] = {}
            for _change, path in changes:
                reason = self.classify(path)
                if reason:
                    reasons.setdefault(reason, []).append(path)
            restart = "templates-folder" in reasons
            if restart:
                # The project's templates folder appeared or went away: watch the right one from now on.
                reasons.setdefault("template", []).extend(reasons.pop("templates-folder"))
            for reason, paths in sorted(reasons.items()):
                log.info("preview: %s changed (%s)", reason, ", ".join(paths))
                self.hub.publish(reason, paths)
            if restart:
                generation.set()
                return


async def _relay(source: anyio.Event, target: anyio.Event) -> None:
    await source.wait()
    target.set()


def articles_fingerprint(store: Store) -> tuple[int, str | None]:
    with store.session() as session:
        count, newest = session.execute(
            select(func.count(ArticleRow.id), func.max(ArticleRow.updated_at))).one()
    return int(count or 0), None if newest is None else str(newest)


async def poll_articles(hub: ChangeHub, fingerprint: Callable[[], tuple[int, str | None]], stop: anyio.Event,
                        interval: float = 1.0) -> None:
    """Publishes "articles" when the articles' count or newest change time moves."""
    last = await anyio.to_thread.run_sync(fingerprint)
    while not stop.is_set():
        with anyio.move_on_after(interval):
            await stop.wait()
        if stop.is_set():
            return
        try:
            current = await anyio.to_thread.run_sync(fingerprint)
        except Exception as exc:  # noqa: BLE001 - a locked or restarting store: try again next tick
            log.warning("preview: could not poll articles: %s", exc)
            continue
        if current != last:
            last = current
            hub.publish("articles")
