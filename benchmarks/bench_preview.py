"""A template save in the preview, end to end (``preview_reload_ms``): from the file written to the new text
visible in the email frame of a viewer open in Chromium, against the reload path from before
(``LEGACY_RELOAD``: watchfiles' 50 ms step, no render ahead, the frame navigated to the new email, the checks
fetched at the same time) in a second preview run side by side.

Two `digest preview` processes (benchmarks/preview_server.py), each on a project of its own (5 fictional
stories, the built-in templates copied), each open in a tab of one Chromium. Saves alternate between the two;
each writes a new marker into ``_article.mjml.j2``. The tab records when the marker is in the frame's document
(polled every millisecond or so) at the next animation frame, i.e. when it is painted; the clock is the
machine's, in both processes. The first save of each is a warm-up. Each save waits for the checks of the one
before (spamassassin included, when installed) to settle, as an editor's next save would.

``extra``: each path's change event in the tab (a second EventSource on the page), and the slowest save.
Needs Chromium at /usr/bin/chromium (or BENCH_CHROMIUM) and Playwright; without them it reports nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchmarks.harness import BenchResult, scaled

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("BENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
SETTLE_S = 2.0  # between saves: the checks of the last one (spamassassin) are done
STORIES = [
    ("b1", "Council approves harbour bridge budget", "The council voted to fund repairs of the old bridge."),
    ("b2", "Rovers clinch late derby victory", "A stoppage-time header gave the Rovers a derby win."),
    ("b3", "Museum reopens renovated gallery", "Visitors queued early as the restored east wing opened."),
    ("b4", "Ferry adds a late crossing on weekends", "The harbour ferry runs until midnight from June."),
    ("b5", "Library opens a repair cafe for radios", "Volunteers fix old radios on Saturday mornings."),
]

# Installed in the tab before each save: when the marker is in the frame's document, note the time of the next
# animation frame (the one that paints it), and when the change event arrived.
WATCH = """(marker) => {
    window.__seen = null; window.__event = null;
    const frame = document.getElementById('frame');
    function check() {
        let doc = null;
        try { doc = frame.contentDocument; } catch (e) { doc = null; }
        if (doc && doc.body && doc.body.textContent.indexOf(marker) >= 0) {
            requestAnimationFrame(() => { window.__seen = performance.timeOrigin + performance.now(); });
            return;
        }
        setTimeout(check, 1);
    }
    check();
}"""
EVENTS = """() => {
    const events = new EventSource('/events');
    events.addEventListener('change', () => {
        if (window.__event === null) { window.__event = performance.timeOrigin + performance.now(); }
    });
}"""


@dataclass
class Arm:
    name: str
    legacy: bool
    root: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    page: Any = None
    original: str = ""
    saves: list[float] = field(default_factory=list)
    events: list[float] = field(default_factory=list)

    @property
    def template(self) -> Path:
        return self.root / "templates" / "_article.mjml.j2"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment(root: Path) -> dict[str, str]:
    return {"DIGEST_DATABASE_URL": f"sqlite:///{root / 'digest.db'}", "DIGEST_SECRET_KEY": "bench-preview-key",
            "DIGEST_CONFIG": str(root / "digest.toml")}


def _project(root: Path) -> None:
    """A newsroom folder with the built-in templates to edit and five fictional stories in today's edition."""
    sys.path.insert(0, str(REPO))
    from digest import editions as pipeline
    from digest.app import App
    from digest.audience.lists import ensure_list
    from digest.editions import upcoming_date
    from digest.models import Article
    from digest.render.templates import PACKAGE_TEMPLATES
    from digest.store.articles import upsert_article

    root.mkdir(parents=True)
    (root / "digest.toml").write_text('outbox_dir = "outbox"\n', encoding="utf-8")
    shutil.copytree(PACKAGE_TEMPLATES, root / "templates")
    saved = dict(os.environ)
    os.environ.update(_environment(root))
    try:
        app = App.load(str(root / "digest.toml"), cwd=root)
        with app.store.session() as session:
            list_row = ensure_list(session, app.settings)
            cutoff = pipeline.cutoff_for(list_row, upcoming_date(session, app.settings, list_row))
            for i, (aid, title, summary) in enumerate(STORIES):
                upsert_article(session, Article(
                    id=aid, title=title, outlet="Example Gazette", author="Fictional Reporter", topics=["local"],
                    url=f"https://news.example.org/{aid}", summary=summary, quick_looks=[f"Key point of {aid}"],
                    published_at=cutoff - timedelta(hours=i + 1)))
        app.close()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _start(arm: Arm) -> None:
    import httpx

    arm.port = _free_port()
    args = [sys.executable, "-m", "benchmarks.preview_server", str(arm.port)] + (["--legacy"] if arm.legacy else [])
    env = {**os.environ, **_environment(arm.root), "PYTHONPATH": str(REPO)}
    arm.proc = subprocess.Popen(args, cwd=arm.root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if arm.proc.poll() is not None:
            raise RuntimeError(f"the {arm.name} preview exited: {arm.proc.stderr.read().decode() if arm.proc.stderr else ''}")
        try:
            if httpx.get(arm.url + "/editions.json", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the {arm.name} preview did not answer")


def _stop(arm: Arm) -> None:
    if arm.proc is not None and arm.proc.poll() is None:
        arm.proc.terminate()
        try:
            arm.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            arm.proc.kill()
            arm.proc.wait()


def _open(arm: Arm, browser: Any) -> None:
    arm.page = browser.new_page(viewport={"width": 1400, "height": 900})
    arm.page.goto(arm.url + "/")
    arm.page.wait_for_selector("#live[data-state='live']")
    arm.page.wait_for_function(
        "() => { const d = document.getElementById('frame').contentDocument;"
        " return !!(d && d.body && d.body.textContent.includes('Council approves harbour bridge budget')); }")
    arm.page.evaluate(EVENTS)
    arm.original = arm.template.read_text(encoding="utf-8")


def _save(arm: Arm, n: int) -> tuple[float, float]:
    """One save; (save → text painted in the frame, save → change event in the tab), in ms."""
    marker = f"Bench marker {arm.name} {n}"
    arm.page.evaluate(WATCH, marker)
    text = arm.original.replace('<p class="byline">', f'<p class="bench-marker">{marker}</p><p class="byline">', 1)
    arm.template.write_text(text, encoding="utf-8")
    saved = time.time() * 1000
    arm.page.wait_for_function("() => window.__seen !== null", timeout=30000, polling=20)
    seen, event = arm.page.evaluate("[window.__seen, window.__event]")
    return seen - saved, (event - saved) if event is not None else float("nan")


def run() -> list[BenchResult]:
    if not Path(CHROMIUM).exists():
        print(f"bench_preview: no Chromium at {CHROMIUM}; skipped", file=sys.stderr)
        return []
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("bench_preview: Playwright is not installed; skipped", file=sys.stderr)
        return []

    saves = scaled(8)
    tmp = Path(tempfile.mkdtemp(prefix="bench-preview-"))
    arms = [Arm("fast", False, tmp / "fast"), Arm("legacy", True, tmp / "legacy")]
    try:
        for arm in arms:
            _project(arm.root)
            _start(arm)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for arm in arms:
                    _open(arm, browser)
                for n in range(saves + 1):
                    # Alternate which goes first, so neither always follows the other's checks.
                    for arm in (arms if n % 2 == 0 else arms[::-1]):
                        total, event = _save(arm, n)
                        if n > 0:  # the first save of each is the warm-up
                            arm.saves.append(total)
                            arm.events.append(event)
                        time.sleep(SETTLE_S)
            finally:
                browser.close()
    finally:
        for arm in arms:
            _stop(arm)
        shutil.rmtree(tmp, ignore_errors=True)

    fast, legacy = arms
    value, baseline = statistics.median(fast.saves), statistics.median(legacy.saves)
    return [BenchResult("preview_reload_ms", value, "ms", baseline, baseline / value, saves, extra={
        "baseline": "the reload path before: watchfiles step 50 ms, no render ahead, the frame navigated, "
                    "the checks fetched alongside",
        "event_ms": round(statistics.median(fast.events), 1),
        "baseline_event_ms": round(statistics.median(legacy.events), 1),
        "max_ms": round(max(fast.saves), 1), "baseline_max_ms": round(max(legacy.saves), 1),
        "saves_ms": [round(v, 1) for v in fast.saves], "baseline_saves_ms": [round(v, 1) for v in legacy.saves]})]
