"""The rendered edition in real Chromium: no horizontal overflow, dark mode that stays legible, axe-core clean."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from digest.audience.pages import render
from digest.render.edition import render_selection
from digest.render.personalize import personalize
from digest.render.webversion import web_html
from digest.web.archive import ArchivedEdition, banner_html
from tests.conftest import REPO, require
from tests.conftest import require_tool as _require_tool
from tests.render_helpers import EDITION_DATE, EVIL_TITLE, list_row, recipient, selection, settings

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
# Rules about page structure that do not apply to an email (no landmarks, no page-level heading duty).
AXE_IGNORED = {"region", "landmark-one-main", "page-has-heading-one"}

# WCAG contrast of every visible text-bearing element against its effective background.
CONTRAST_JS = """
() => {
  const parse = c => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(',').map(s => parseFloat(s)); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const background = el => { for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a > 0.5) return c; }
    return {r: 255, g: 255, b: 255, a: 1}; };
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const style = getComputedStyle(el);
    if (style.display === 'none' || style.visibility === 'hidden' || parseFloat(style.opacity) === 0
        || el.getClientRects().length === 0) continue;
    let hidden = false;
    for (let e = el; e; e = e.parentElement) { const s = getComputedStyle(e);
      if (s.display === 'none' || parseFloat(s.opacity) === 0 || s.maxHeight === '0px') { hidden = true; break; } }
    if (hidden) continue;
    const fg = parse(style.color), bg = background(el);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    out.push({text: el.textContent.trim().slice(0, 40), ratio: (a + 0.05) / (b + 0.05), color: style.color,
              background: `rgb(${bg.r}, ${bg.g}, ${bg.b})`});
  }
  return out;
}
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _require_tool("chromium", CHROMIUM)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def email_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("browser")
    sel = selection(6)
    sel.items[3].article.title = EVIL_TITLE
    sel.items[4].article.url = "https://ledger.example.org/" + "very-long-unbroken-slug-" * 12
    sel.items[4].article.title = "Supercalifragilisticexpialidocious" * 3
    sel.note = "Good morning. Today's *lead* is the footbridge; [the council's papers](https://example.org/p)."
    for item, topic in zip(sel.items, ["politics", "transport", "culture", "transport", "culture", "weather"],
                           strict=True):
        item.article.topics = [topic]
    row = list_row(topics=["transport", "culture", "politics"])
    rendered = render_selection(settings(tmp, theme={"sections": True}), row, EDITION_DATE, sel)
    return personalize(rendered, recipient(name="Pat Reader"))[1]


@pytest.fixture(scope="module")
def pages(email_html: str) -> dict[str, str]:
    """The email, its web version and an archive page, as `digest serve` builds them."""
    row = list_row(topics=["transport", "culture", "politics"])
    base = "https://news.example.org"
    web = web_html(email_html, f"{base}/subscribe/daily", banner_html(row, base, EDITION_DATE))
    editions = [ArchivedEdition(i, EDITION_DATE, f"Edition {i}: " + "Supercalifragilistic" * (3 if i == 2 else 1),
                                ["River district council approves new footbridge", EVIL_TITLE], None,
                                datetime(2031, 3, 4, 6, tzinfo=UTC), i) for i in (1, 2, 3)]
    archive = render("archive.html", {"title": "The Daily: all editions", "list_title": "The Daily",
                                      "list_name": "daily", "editions": editions,
                                      "feed_url": f"{base}/archive/daily/feed.xml",
                                      "subscribe_url": f"{base}/subscribe/daily", "postal_address": "1 Sample St"})
    return {"email": email_html, "web": web, "archive": archive}


def open_page(browser: Any, html: str, width: int, scheme: str = "light") -> Any:
    page = browser.new_page(viewport={"width": width, "height": 800})
    # Offline: image requests fail at once instead of waiting on DNS.
    page.route("**/*", lambda route: route.abort() if route.request.url.startswith("http") else route.continue_())
    page.emulate_media(color_scheme=scheme)
    page.set_content(html, wait_until="load")
    return page


@pytest.mark.parametrize("which", ["email", "web", "archive"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [320, 375, 640])
def test_no_horizontal_overflow(browser: Any, pages: dict[str, str], which: str, scheme: str, width: int) -> None:
    page = open_page(browser, pages[which], width, scheme)
    try:
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll <= inner, f"{scroll}px of content in a {inner}px viewport"
    finally:
        page.close()


def test_dark_mode_changes_background_and_keeps_contrast(browser: Any, email_html: str) -> None:
    backgrounds = {}
    for scheme in ("light", "dark"):
        page = open_page(browser, email_html, 375, scheme)
        try:
            backgrounds[scheme] = page.evaluate(
                "[getComputedStyle(document.body).backgroundColor,"
                " getComputedStyle(document.querySelector('.dm-card')).backgroundColor]")
            results = page.evaluate(CONTRAST_JS)
        finally:
            page.close()
        assert len(results) > 20, "the contrast check found too little text to mean anything"
        low = [r for r in results if r["ratio"] < 4.5]
        assert not low, f"{scheme}: text below 4.5:1 contrast: {low[:5]}"
    assert backgrounds["light"][0] != backgrounds["dark"][0]
    assert backgrounds["light"][1] != backgrounds["dark"][1]
    assert backgrounds["dark"][0] == "rgb(17, 20, 24)"  # theme.dark_background_color #111418


@pytest.mark.parametrize("which", ["email", "web", "archive"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_violations(browser: Any, pages: dict[str, str], which: str, scheme: str) -> None:
    require(AXE.is_file(), "axe-core (npm ci)")
    page = open_page(browser, pages[which], 640, scheme)
    try:
        page.add_script_tag(path=str(AXE))
        result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    finally:
        page.close()
    bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"][:3]]) for v in result["violations"]
           if v["impact"] in {"serious", "critical"} and v["id"] not in AXE_IGNORED]
    assert bad == [], bad


def test_lead_note_and_sections_show(browser: Any, pages: dict[str, str]) -> None:
    page = open_page(browser, pages["email"], 375)
    try:
        sizes = page.evaluate("[...document.querySelectorAll('h2.headline')].map(h => "
                              "parseFloat(getComputedStyle(h).fontSize))")
        assert sizes[0] > max(sizes[1:])  # the lead stands out
        assert page.inner_text("div.note").startswith("Good morning. Today's lead is the footbridge")
        assert page.evaluate("[...document.querySelectorAll('h3.section')].map(h => h.innerText)") == [
            "TRANSPORT", "CULTURE", "MORE"]
    finally:
        page.close()
    web = open_page(browser, pages["web"], 375)
    try:
        assert "/unsubscribe/" not in web.content() and web.inner_text("div.note").startswith("Good morning")
    finally:
        web.close()


def test_script_title_never_runs(browser: Any, email_html: str) -> None:
    page = open_page(browser, email_html, 640)
    try:
        assert page.evaluate("document.querySelectorAll('script').length") == 0
        assert EVIL_TITLE in page.inner_text("body")
    finally:
        page.close()


