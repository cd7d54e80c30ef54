"""The editor's note: a small Markdown subset (paragraphs, line breaks, emphasis, links) → safe HTML and text.

markdown-it-py's "zero" preset with only emphasis and links switched on: raw HTML is never passed through
(``html`` is off, so ``<script>`` arrives as text), and its link check refuses ``javascript:``, ``vbscript:``,
``file:`` and ``data:`` targets; on top of that only http(s) and mailto links become links.
"""

from __future__ import annotations

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup

from digest.render.personalize import neutralize

NOTE_MAX_CHARS = 3000
_ALLOWED_SCHEMES = ("http://", "https://", "mailto:")


def _validate_link(url: str) -> bool:
    return url.strip().lower().startswith(_ALLOWED_SCHEMES)


def _parser() -> MarkdownIt:
    md = MarkdownIt("zero", {"html": False, "breaks": True, "linkify": False, "typographer": False})
    md.enable(["emphasis", "link", "newline", "escape", "backticks"])
    md.validateLink = _validate_link  # type: ignore[method-assign]
    return md


_MD = _parser()


def clean_note(text: str | None) -> str:
    """The note as stored: line endings normalized, outer blank lines gone (empty means no note)."""
    return "\n".join(line.rstrip() for line in (text or "").replace("\r\n", "\n").replace("\r", "\n")
                     .split("\n")).strip()


def note_html(text: str | None) -> Markup:
    """The note as HTML paragraphs (escaped; reader-value look-alikes broken so a note cannot pull them in)."""
    source = clean_note(text)
    if not source:
        return Markup("")
    return Markup(_MD.render(neutralize(source)).strip())


def note_text(text: str | None) -> str:
    """The note for the plain-text part: emphasis marks dropped, a link as "label <url>"."""
    source = clean_note(text)
    if not source:
        return ""
    paragraphs: list[str] = []
    for token in _MD.parse(neutralize(source)):
        if token.type == "inline":
            paragraphs.append(_inline_text(token.children or []))
    return "\n\n".join(p for p in paragraphs if p)


def _inline_text(children: list[Token]) -> str:
    out: list[str] = []
    hrefs: list[str] = []
    for child in children:
        if child.type in ("text", "code_inline"):
            out.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            out.append("\n")
        elif child.type == "link_open":
            hrefs.append(str(child.attrs.get("href", "")))
        elif child.type == "link_close" and hrefs:
            href = hrefs.pop()
            out.append(f" <{href}>")
    return "".join(out).strip()
