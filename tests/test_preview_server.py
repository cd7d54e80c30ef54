"""`digest preview` as a real process: uvicorn on loopback, live reload over SSE, and in Chromium.

Every article and address here is fictional.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from digest import editions as pipeline
from digest.audience.lists import ensure_list
from digest.models import Article
from digest.render.templates import PACKAGE_TEMPLATES
from digest.store.articles import upsert_article
from tests.conftest import Project, require_tool
from tests.test_preview_app import Seeded, add_subscriber, seed

DIGEST = Path(sys.executable).with_name("digest")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, project: Project, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, **project.env, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [str(DIGEST), "preview", "--port", str(self.port), "--no-open", "--poll", "0.2", *extra],
            cwd=project.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"digest preview exited early:\n{self.output()}")
            try:
                if httpx.get(self.url + "/editions.json", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"digest preview did not answer:\n{self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        assert self.proc.stdout is not None
        return self.proc.stdout.read().decode("utf-8", "replace")

    def stop(self) -> float:
        """Ctrl-C, as a person would; returns how long the shutdown took."""
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                # Generous: under a loaded CI machine a render or spam check in flight can hold shutdown back;
                # the promptness itself is asserted by test_ctrl_c_stops_the_preview_even_with_a_tab_open.
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("digest preview did not stop on Ctrl-C") from None
        return time.monotonic() - started


@pytest.fixture
def seeded_server(project: Project) -> Iterator[tuple[Seeded, Server]]:
    seeded = seed(project)
    shutil.copytree(PACKAGE_TEMPLATES, project.root / "templates")
    server = Server(project)
    yield seeded, server
    server.stop()


def _events(server: Server, count: int, action: object) -> list[dict[str, object]]:
    """Reads the SSE stream: waits for the hello, runs ``action``, then collects ``count`` change events."""
    found: list[dict[str, object]] = []
    with httpx.stream("GET", server.url + "/events", timeout=httpx.Timeout(15.0)) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        event = None
        for line in lines:
            if line.startswith("event: "):
                event = line[len("event: "):]
            elif line.startswith("data: ") and event == "hello":
                assert callable(action)
                action()
                event = None
            elif line.startswith("data: ") and event == "change":
                found.append(json.loads(line[len("data: "):]))
                if len(found) >= count:
                    return found
    return found


def test_preview_runs_as_a_process_on_loopback(seeded_server: tuple[Seeded, Server]) -> None:
    seeded, server = seeded_server
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and "digest preview" in page.text
    assert f"/l/daily/{seeded.day.isoformat()}/html" in page.text
    html = httpx.get(f"{server.url}/l/daily/{seeded.day.isoformat()}/html")
    assert html.status_code == 200 and "Council approves harbour bridge budget" in html.text
    # A foreign host name (DNS rebinding from a web page) is refused.
    assert httpx.get(server.url + "/editions.json", headers={"Host": "attacker.example.net"}).status_code == 400
    # Bound to 127.0.0.1 only: the machine's other addresses do not answer.
    other = socket.gethostbyname(socket.gethostname())
    if not other.startswith("127."):
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://{other}:{server.port}/", timeout=2)


def test_live_reload_events_for_templates_and_articles(seeded_server: tuple[Seeded, Server],
                                                        project: Project) -> None:
    seeded, server = seeded_server
    template = project.root / "templates" / "_footer.mjml.j2"

    events = _events(server, 1, lambda: template.write_text(template.read_text() + "\n", encoding="utf-8"))
    assert events[0]["reason"] == "template" and events[0]["paths"] == [str(template.resolve())]

    def add_article() -> None:
        with seeded.app.store.session() as session:
            list_row = ensure_list(session, seeded.app.settings)
            upsert_article(session, Article(
                id="late1", title="Ferry timetable extended for winter", outlet="Example Gazette",
                url="https://news.example.org/late1", topics=["politics"],
                summary="Evening crossings continue until March under the new fictional timetable.",
                published_at=pipeline.cutoff_for(list_row, seeded.day) - timedelta(minutes=5)))

    events = _events(server, 1, add_article)
    assert events[0]["reason"] == "articles"
    config = project.root / "digest.toml"
    events = _events(server, 1, lambda: config.write_text(config.read_text() + "\n# edited\n", encoding="utf-8"))
    assert events[0]["reason"] == "config"


def test_ctrl_c_stops_the_preview_even_with_a_tab_open(project: Project) -> None:
    server = Server(project)
    with httpx.stream("GET", server.url + "/events", timeout=10) as response:
        next(response.iter_lines())  # a browser tab is listening for changes
        took = server.stop()
    assert server.proc.returncode == 0
    assert took < 8


def test_a_busy_port_is_a_clear_error(project: Project) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run([str(DIGEST), "preview", "--port", str(port), "--no-open"], cwd=project.root,
                                env={**os.environ, **project.env}, capture_output=True, text=True, timeout=30,
                                check=False)
    assert result.returncode != 0
    assert str(port) in result.stderr + result.stdout


def test_preview_help_documents_the_options(sqlite_project: Project) -> None:
    out = sqlite_project.run("preview", "--help").output
    for option in ("--host", "--port", "--no-open"):
        assert option in out
    assert "127.0.0.1" in out and "8030" in out


# --- in Chromium -----------------------------------------------------------------------------------------


@pytest.fixture
def browser_page(sqlite_project: Project) -> Iterator[object]:
    chromium = require_tool("chromium", "/usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            yield page
        finally:
            browser.close()


def _live_preview_with_templates(project: Project, page: Any) -> tuple[Seeded, Server]:
    """A seeded project with the package's templates copied in to edit, its preview running and open in
    ``page``, live and showing the edition."""
    seeded = seed(project)
    shutil.copytree(PACKAGE_TEMPLATES, project.root / "templates")
    server = Server(project)
    try:
        page.goto(server.url + "/")
        page.wait_for_selector("#live[data-state='live']")
        _wait_for_frame_text(page, "Council approves harbour bridge budget")
    except BaseException:
        server.stop()
        raise
    return seeded, server


@pytest.mark.browser
def test_live_reload_in_the_browser_after_a_template_edit(sqlite_project: Project, browser_page: object) -> None:
    from playwright.sync_api import Page

    page = browser_page
    assert isinstance(page, Page)
    seeded, server = _live_preview_with_templates(sqlite_project, page)
    try:
        page.evaluate("window.__untouched = 'same page'")

        article = sqlite_project.root / "templates" / "_article.mjml.j2"
        article.write_text(article.read_text(encoding="utf-8").replace(
            '<p class="byline">', '<p class="live-marker">Fictional live-reload marker</p><p class="byline">', 1),
            encoding="utf-8")
        _wait_for_frame_text(page, "Fictional live-reload marker")
        assert page.evaluate("window.__untouched") == "same page"  # the iframe reloaded, not the page
        assert int(page.get_attribute("#viewer", "data-reloads") or 0) >= 1

        # The checks panel follows too; then a broken template shows its file and line, and recovers.
        page.wait_for_selector("#panel [data-check='size']")
        original = article.read_text(encoding="utf-8")
        article.write_text(original + "\n{% endif %}\n", encoding="utf-8")
        _wait_for_frame_text(page, "_article.mjml.j2")
        article.write_text(original, encoding="utf-8")
        _wait_for_frame_text(page, "Fictional live-reload marker")
        assert page.evaluate("window.__untouched") == "same page"
        assert seeded.day.isoformat() in page.inner_text(".where")
    finally:
        server.stop()


# Every element of the email with the styles a reader sees (the marker paragraphs are the new elements).
_FRAME_STYLES = """() => Array.from(document.getElementById('frame').contentDocument.querySelectorAll('body *'))
    .map(e => { const c = getComputedStyle(e); return [e.tagName, e.className, c.display, c.color, c.fontSize,
                c.backgroundColor, c.paddingTop].join(','); })"""


@pytest.mark.browser
def test_a_template_save_swaps_the_frames_document_without_reloading_the_page_or_the_frame(
        sqlite_project: Project, browser_page: object) -> None:
    from playwright.sync_api import Page

    page = browser_page
    assert isinstance(page, Page)
    _, server = _live_preview_with_templates(sqlite_project, page)
    try:
        page.wait_for_selector("#panel [data-check='size']")
        # Markers on the viewer's window and on the frame's: a page reload drops the first, a frame navigation
        # (the old way) the second and fires the frame's load event.
        page.evaluate("""() => {
            window.__viewer = 'same page';
            const frame = document.getElementById('frame');
            frame.contentWindow.__frame = 'same frame document';
            window.__frameLoads = 0;
            frame.addEventListener('load', () => { window.__frameLoads += 1; });
        }""")
        src = page.get_attribute("#frame", "src")
        panel_version = page.get_attribute("#panel .panel-body", "data-version")
        styles = page.evaluate(_FRAME_STYLES)

        article = sqlite_project.root / "templates" / "_article.mjml.j2"
        article.write_text(article.read_text(encoding="utf-8").replace(
            '<p class="byline">', '<p class="swap-marker">Fictional swapped-in marker</p><p class="byline">', 1),
            encoding="utf-8")
        _wait_for_frame_text(page, "Fictional swapped-in marker")
        assert page.evaluate("window.__viewer") == "same page"
        assert page.evaluate("document.getElementById('frame').contentWindow.__frame") == "same frame document"
        assert page.evaluate("window.__frameLoads") == 0
        assert page.get_attribute("#frame", "src") == src
        # Styled exactly as a loaded email is (the inlined styles included: the hidden preheader stays hidden).
        after = page.evaluate(_FRAME_STYLES)
        assert [s for s in after if ",swap-marker," not in s] == styles and len(after) > len(styles)
        assert "Also today" not in page.evaluate("document.getElementById('frame').contentDocument.body.innerText")
        # The email's own rules still hold in the swapped document: links open a new tab, no script may run.
        assert page.evaluate("document.getElementById('frame').contentDocument.querySelector('base').target") \
            == "_blank"
        # The checks follow once the email is in place.
        page.wait_for_function("(old) => { const b = document.querySelector('#panel .panel-body');"
                               " return !!b && b.getAttribute('data-version') !== old; }", arg=panel_version)
        # Switching views still navigates the frame (plain text is no HTML document to swap).
        page.click("button[data-view='text']")
        page.wait_for_function("() => document.getElementById('frame').contentDocument.contentType === 'text/plain'"
                               " && document.getElementById('frame').contentDocument.readyState === 'complete'")
        assert "Fictional swapped-in marker" not in page.evaluate(
            "document.getElementById('frame').contentDocument.body.innerText")
        assert page.evaluate("window.__viewer") == "same page"
    finally:
        server.stop()


def _wait_for_frame_text(page: object, text: str) -> None:
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    page.wait_for_function(
        "(text) => { const d = document.getElementById('frame').contentDocument;"
        " return !!(d && d.body && d.readyState === 'complete' && d.body.innerText.includes(text)); }",
        arg=text, timeout=15000)


def _card_colors(page: object) -> dict[str, str]:
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    # The colour a reader sees behind the lede: the nearest ancestor with a non-transparent background.
    return page.evaluate("""() => {
        const d = document.getElementById('frame').contentDocument;
        const lede = d.querySelector('p.lede');
        let el = lede, card = 'rgba(0, 0, 0, 0)';
        while (el) {
            const bg = getComputedStyle(el).backgroundColor;
            if (bg && bg !== 'transparent' && !bg.startsWith('rgba(0, 0, 0, 0')) { card = bg; break; }
            el = el.parentElement;
        }
        return {card: card, text: getComputedStyle(lede).color,
                width: String(d.documentElement.clientWidth), scroll: String(d.documentElement.scrollWidth)};
    }""")


def _luminance(css: str) -> float:
    parts = [float(x) for x in css[css.index("(") + 1:css.index(")")].split(",")[:3]]

    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in parts)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


@pytest.mark.browser
def test_dark_mode_and_mobile_toggles_in_the_browser(sqlite_project: Project, browser_page: object) -> None:
    from playwright.sync_api import Page

    page = browser_page
    assert isinstance(page, Page)
    seed(sqlite_project)
    server = Server(sqlite_project)
    try:
        page.goto(server.url + "/")
        _wait_for_frame_text(page, "Council approves harbour bridge budget")
        light = _card_colors(page)
        assert _luminance(light["card"]) > 0.5, light

        with page.expect_response(lambda r: "/html?" in r.url and "dark=1" in r.url):
            page.click("#dark")
        page.wait_for_function("() => document.getElementById('frame').contentDocument.readyState === 'complete'"
                               " && document.getElementById('frame').src.includes('dark=1')")
        _wait_for_frame_text(page, "Council approves harbour bridge budget")
        dark = _card_colors(page)
        assert _luminance(dark["card"]) < 0.1, dark  # the template's dark styles really apply
        contrast = (max(_luminance(dark["text"]), _luminance(dark["card"])) + 0.05) / (
            min(_luminance(dark["text"]), _luminance(dark["card"])) + 0.05)
        assert contrast >= 4.5, dark
        assert page.get_attribute("#dark", "aria-pressed") == "true"
        assert "dark=1" in page.evaluate("location.hash")

        page.click("[data-width='375']")
        page.wait_for_function("() => document.getElementById('frame').getBoundingClientRect().width <= 377")
        _wait_for_frame_text(page, "Council approves harbour bridge budget")
        mobile = _card_colors(page)
        assert int(mobile["scroll"]) <= int(mobile["width"]) + 1, mobile  # no horizontal scrolling
        # Toggle state is announced on the toggle buttons only (axe: aria-allowed-attr), not on the frame.
        assert page.evaluate("[...document.querySelectorAll('[aria-pressed]')].map(e => e.tagName)") == [
            "BUTTON"] * 9
        assert page.get_attribute("[data-width='375']", "aria-pressed") == "true"

        page.click("[data-view='text']")
        page.wait_for_function("() => document.getElementById('frame').src.includes('/text')")
        _wait_for_frame_text(page, "Council approves harbour bridge budget")
        page.click("[data-view='headers']")
        _wait_for_frame_text(page, "List-Unsubscribe-Post")
        # The web version and the archive page, next to the email.
        page.click("[data-view='web']")
        page.wait_for_function("() => document.getElementById('frame').src.includes('/web')")
        _wait_for_frame_text(page, "All editions")
        page.click("[data-view='archive']")
        page.wait_for_function("() => document.getElementById('frame').src.includes('/archive')")
        _wait_for_frame_text(page, "this preview")
    finally:
        server.stop()


@pytest.mark.browser
def test_view_as_and_send_test_keep_the_mobile_dark_view(sqlite_project: Project, browser_page: object) -> None:
    from playwright.sync_api import Page

    page = browser_page
    assert isinstance(page, Page)
    seeded = seed(sqlite_project)
    add_subscriber(seeded.app, seeded.list_id, "reader@example.org", ["politics"], name="Fictional Reader")
    server = Server(sqlite_project)
    try:
        page.goto(server.url + "/")
        _wait_for_frame_text(page, "Council approves harbour bridge budget")
        page.click("[data-width='375']")
        page.click("#dark")
        with page.expect_navigation():
            page.select_option("#subscriber", "reader@example.org")
        assert "subscriber=reader%40example.org" in page.url
        assert page.evaluate("location.hash") == "#view=html&width=375&dark=1"
        assert page.get_attribute("[data-width='375']", "aria-pressed") == "true"
        assert page.get_attribute("#dark", "aria-pressed") == "true"

        page.fill("#to", "editor@example.org")
        with page.expect_navigation():
            page.click(".send-test button[type='submit']")
        assert "sent=editor%40example.org" in page.url
        assert page.evaluate("location.hash") == "#view=html&width=375&dark=1"
        assert page.get_attribute("#dark", "aria-pressed") == "true"
    finally:
        server.stop()
