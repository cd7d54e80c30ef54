"""Live reload machinery: the SSE hub, the file watcher on real files, the article poller on a real store."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import anyio

from digest.models import Article
from digest.store.articles import upsert_article
from digest.store.db import Store
from digest.web.preview_live import ChangeHub, FileWatcher, articles_fingerprint, poll_articles


def _run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), timeout=20))  # type: ignore[arg-type]


def test_hub_streams_hello_then_changes_to_every_listener() -> None:
    async def main() -> None:
        hub = ChangeHub()
        first, second = hub.stream(heartbeat=5), hub.stream(heartbeat=5)
        assert "event: hello" in await first.__anext__()
        assert "event: hello" in await second.__anext__()
        assert hub.listeners == 2
        hub.publish("template", ["/x/digest.mjml.j2"])
        for stream in (first, second):
            text = await stream.__anext__()
            assert text.startswith("id: 1\nevent: change\n") and '"reason": "template"' in text
        hub.close()
        for stream in (first, second):
            try:
                await stream.__anext__()
                raise AssertionError("the stream should end when the hub closes")
            except StopAsyncIteration:
                pass
        assert hub.listeners == 0

    _run(main)


def test_hub_sends_keepalives_while_idle() -> None:
    async def main() -> None:
        hub = ChangeHub()
        stream = hub.stream(heartbeat=0.05)
        await stream.__anext__()
        assert await stream.__anext__() == ": keep-alive\n\n"
        await stream.aclose()

    _run(main)


async def _next_event(hub: ChangeHub, timeout: float = 8.0) -> tuple[str, tuple[str, ...]]:
    stream = hub.stream(heartbeat=timeout)
    await stream.__anext__()
    try:
        with anyio.fail_after(timeout):
            while True:
                text = await stream.__anext__()
                if "event: change" in text:
                    import json

                    data = json.loads(text.split("data: ", 1)[1])
                    return data["reason"], tuple(data["paths"])
    finally:
        await stream.aclose()


def test_file_watcher_sees_template_and_config_edits_but_not_the_outbox(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "digest.mjml.j2").write_text("<mjml></mjml>")
    config = tmp_path / "digest.toml"
    config.write_text('outbox_dir = "outbox"\n')
    (tmp_path / "outbox").mkdir()

    async def main() -> None:
        hub = ChangeHub()
        stop = anyio.Event()
        watcher = FileWatcher(hub, templates, config)
        async with anyio.create_task_group() as group:
            group.start_soon(watcher.run, stop)
            await anyio.sleep(0.4)  # let the watcher start

            async def edit_later(path: Path, text: str) -> None:
                await anyio.sleep(0.2)
                path.write_text(text)

            # Noise first: neither the outbox nor an editor's swap file is a change worth reloading for.
            (tmp_path / "outbox" / "x.eml").write_text("x")
            (templates / ".digest.mjml.j2.swp").write_text("x")
            group.start_soon(edit_later, templates / "digest.mjml.j2", "<mjml><mj-body/></mjml>")
            reason, paths = await _next_event(hub)
            assert reason == "template" and paths == (str((templates / "digest.mjml.j2").resolve()),)

            group.start_soon(edit_later, config, 'outbox_dir = "elsewhere"\n')
            reason, _ = await _next_event(hub)
            assert reason == "config"
            stop.set()

    _run(main)


def test_file_watcher_picks_up_a_templates_folder_created_later(tmp_path: Path) -> None:
    builtin = tmp_path / "builtin"
    builtin.mkdir()
    (builtin / "digest.txt.j2").write_text("x")
    project = tmp_path / "newsroom"
    project.mkdir()
    config = project / "digest.toml"
    config.write_text("")
    templates = project / "templates"

    async def main() -> None:
        hub = ChangeHub()
        stop = anyio.Event()
        watcher = FileWatcher(hub, templates, config, fallback_templates=builtin)
        assert watcher.template_root() == builtin.resolve()
        async with anyio.create_task_group() as group:
            group.start_soon(watcher.run, stop)
            await anyio.sleep(0.4)

            async def create_later() -> None:
                await anyio.sleep(0.2)
                templates.mkdir()

            group.start_soon(create_later)
            reason, _ = await _next_event(hub)
            assert reason == "template"
            assert watcher.template_root() == templates.resolve()
            await anyio.sleep(0.4)  # the watcher restarts on the new folder

            async def edit_later() -> None:
                await anyio.sleep(0.2)
                (templates / "digest.txt.j2").write_text("y")

            group.start_soon(edit_later)
            reason, paths = await _next_event(hub)
            assert reason == "template" and paths == (str((templates / "digest.txt.j2").resolve()),)
            stop.set()

    _run(main)


def test_article_poller_notices_new_and_updated_articles(store: Store) -> None:
    def add(title: str) -> None:
        with store.session() as session:
            upsert_article(session, Article(id="a1", title=title, url="https://example.org/a1",
                                            published_at=datetime(2024, 5, 1, 6, tzinfo=UTC)))

    before = articles_fingerprint(store)
    add("Fictional headline")
    after_insert = articles_fingerprint(store)
    assert after_insert != before and after_insert[0] == before[0] + 1

    async def main() -> None:
        hub = ChangeHub()
        stop = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(poll_articles, hub, lambda: articles_fingerprint(store), stop, 0.05)
            await anyio.sleep(0.2)
            assert hub.version == 0  # nothing changed yet

            async def update_later() -> None:
                await anyio.sleep(0.1)
                await anyio.to_thread.run_sync(add, "Fictional headline, updated")

            group.start_soon(update_later)
            reason, _ = await _next_event(hub)
            assert reason == "articles"
            stop.set()

    _run(main)
