"""The preview's checks panel and dark-mode frame, on hand-made HTML and messages (no database)."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from digest.web.preview_checks import (
    SpamChecker,
    check_images,
    check_links,
    check_list_unsubscribe,
    check_size,
    parse_spamassassin,
    run_checks,
)
from digest.web.preview_frame import force_dark, frame_html
from tests.conftest import require_tool

HTML = """<!doctype html><html lang="en"><head><title>t</title></head><body>
<img src="https://example.org/logo.png" alt="Example News">
<img src="https://example.org/photo.jpg">
<img src="https://example.org/spacer.gif" alt="  ">
<a href="https://example.org/a">ok</a>
<a href="http://example.org/b">ok too</a>
<a href="javascript:alert(1)">bad</a>
<a href="mailto:desk@example.org">mail us</a>
<a>no target</a>
</body></html>"""


def _eml(list_unsubscribe: str | None, one_click: bool = True) -> bytes:
    msg = EmailMessage()
    msg["From"] = "News <news@example.org>"
    msg["To"] = "reader@example.org"
    msg["Subject"] = "Fictional test edition"
    if list_unsubscribe is not None:
        msg["List-Unsubscribe"] = list_unsubscribe
    if one_click:
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content("Hello, this is a fictional sample.")
    return bytes(msg)


def test_size_against_the_limit() -> None:
    assert check_size("a" * 100, 1000).status == "ok"
    assert check_size("a" * 950, 1000).status == "warn"
    over = check_size("é" * 600, 1000)  # bytes, not characters: 1,200 bytes
    assert over.status == "fail" and over.value == 1200


def test_images_without_alt_text_are_listed() -> None:
    check = check_images(HTML)
    assert check.status == "fail"
    assert check.details == ["https://example.org/photo.jpg", "https://example.org/spacer.gif"]
    assert check_images('<img src="x.png" alt="A chart">').status == "ok"


def test_links_that_are_not_http_are_listed_mailto_included() -> None:
    check = check_links(HTML)
    assert check.status == "fail"
    assert "javascript:alert(1)" in check.details
    assert "mailto:desk@example.org" in check.details
    assert any(d.startswith("(link without href)") for d in check.details)
    assert not any(d.startswith("http") for d in check.details)
    assert check_links('<a href="https://example.org">x</a><a href=" HTTPS://example.org/y">y</a>').status == "ok"


def test_in_page_links_need_their_target() -> None:
    assert check_links('<a href="#story-1">jump</a><h2 id="story-1">Story</h2>').status == "ok"
    broken = check_links('<a href="#story-2">jump</a><h2 id="story-1">Story</h2>')
    assert broken.status == "fail" and broken.details == ["#story-2 (no element with this id)"]


def test_list_unsubscribe_allows_mailto_but_not_other_schemes() -> None:
    good = check_list_unsubscribe(_eml("<https://example.org/unsubscribe/t>, <mailto:u@example.org>"))
    assert good.status == "ok" and len(good.details) == 2
    assert check_list_unsubscribe(_eml("<javascript:alert(1)>")).status == "fail"
    assert check_list_unsubscribe(_eml(None)).status == "fail"
    assert check_list_unsubscribe(_eml("<https://example.org/u>", one_click=False)).status == "warn"


SPAMASSASSIN_OUTPUT = """X-Spam-Status: No, score=1.3 required=5.0 tests=HTML_MESSAGE,
\tMIME_HTML_ONLY autolearn=no version=4.0.1
Subject: x

body
Content analysis details:   (1.3 points, 5.0 required)

 pts rule name              description
---- ---------------------- --------------------------------------------------
 0.0 HTML_MESSAGE           BODY: HTML included in message
 1.3 MIME_HTML_ONLY         BODY: Message only has text/html MIME parts
                            (wrapped line)
"""


def test_parse_spamassassin_report() -> None:
    score, rules = parse_spamassassin(SPAMASSASSIN_OUTPUT)
    assert score == 1.3
    assert rules[0].startswith("0.0 HTML_MESSAGE")
    assert rules[1] == "1.3 MIME_HTML_ONLY BODY: Message only has text/html MIME parts (wrapped line)"
    with pytest.raises(ValueError):
        parse_spamassassin("no report here")


def test_spamassassin_missing_is_skipped_not_failed() -> None:
    assert SpamChecker(executable="").check(_eml("<https://example.org/u>")).status == "skipped"


def test_spamassassin_scores_a_message() -> None:
    exe = require_tool("spamassassin")
    checker = SpamChecker(exe)
    eml = _eml("<https://example.org/u>")
    check = checker.check(eml)
    assert check.name == "spamassassin" and isinstance(check.value, float)
    assert check.status in {"ok", "warn", "fail"}
    assert check.details, "the rules that fired are listed"
    assert checker.check(eml) is check  # cached: the same message is not scanned twice


def test_run_checks_includes_every_check() -> None:
    names = [c.name for c in run_checks(HTML, _eml("<https://example.org/u>"), max_html_bytes=102_000,
                                        spam=SpamChecker(executable=""))]
    assert names == ["size", "images", "links", "list-unsubscribe", "spamassassin"]


DARK_HTML = """<html><head><style>
.card { background: #ffffff; color: #111111; }
@media (prefers-color-scheme: dark) { .card { background: #101010 !important; color: #eeeeee !important; } }
@media (prefers-color-scheme: light) { .card { border: 1px solid red; } }
@media screen and (prefers-color-scheme: dark) and (max-width: 480px) { .card { padding: 0 !important; } }
</style></head><body><div class="card">@media (prefers-color-scheme: dark) { stays text }</div></body></html>"""


def test_force_dark_rewrites_only_the_media_conditions_in_styles() -> None:
    out = force_dark(DARK_HTML)
    assert "prefers-color-scheme: dark) {" not in out.split("<body>")[0]
    assert "@media (min-width: 0px) { .card { background: #101010 !important" in out
    assert "@media not all { .card { border" in out
    assert "and (min-width: 0px) and (max-width: 480px)" in out
    assert '<meta name="color-scheme" content="dark">' in out
    # Article text that merely mentions the media query is left alone.
    assert "<div class=\"card\">@media (prefers-color-scheme: dark) { stays text }</div>" in out


def test_frame_html_opens_links_in_a_new_tab() -> None:
    out = frame_html(DARK_HTML, dark=False)
    assert out.index('<base target="_blank">') > out.index("<head>")
    assert "prefers-color-scheme: dark" in out
