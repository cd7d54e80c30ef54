"""MJML → HTML with mjml-python (the Rust MRML engine), plus the lint it needs.

MRML passes tags it does not know straight through (a typo such as ``<mj-colum>`` silently breaks the layout),
so ``lint`` rejects every ``mj-*`` tag outside MJML's vocabulary, naming the file and line.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from mjml import mjml2html

from digest.render.templates import TemplateError

# MJML 4's tags (https://documentation.mjml.io); MRML implements these.
KNOWN_TAGS = frozenset({
    "mjml", "mj-head", "mj-body", "mj-include",
    "mj-attributes", "mj-all", "mj-class", "mj-breakpoint", "mj-font", "mj-html-attributes", "mj-html-attribute",
    "mj-selector", "mj-preview", "mj-style", "mj-title", "mj-raw",
    "mj-accordion", "mj-accordion-element", "mj-accordion-text", "mj-accordion-title", "mj-button",
    "mj-carousel", "mj-carousel-image", "mj-column", "mj-divider", "mj-group", "mj-hero", "mj-image",
    "mj-navbar", "mj-navbar-link", "mj-section", "mj-social", "mj-social-element", "mj-spacer", "mj-table",
    "mj-text", "mj-wrapper",
})

_TAG = re.compile(r"</?\s*((?:mjml|mj-[A-Za-z0-9_-]*))\b")


@dataclass(frozen=True)
class LintProblem:
    origin: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.origin}:{self.line}: {self.message}"

    def error(self) -> TemplateError:
        return TemplateError(self.message, template=self.origin, line=self.line)


def lint(source: str, *, origin: str) -> list[LintProblem]:
    """Problems in MJML (or an MJML Jinja template): one per unknown ``mj-*`` tag, with its line."""
    problems = []
    for match in _TAG.finditer(source):
        tag = match.group(1).lower()
        if tag not in KNOWN_TAGS:
            line = source.count("\n", 0, match.start()) + 1
            problems.append(LintProblem(origin, line, f"unknown MJML tag <{tag}> (MRML would drop or pass it "
                                                      "through silently)"))
    return problems


def lint_files(paths: list[Path], display: dict[Path, str] | None = None) -> list[LintProblem]:
    problems: list[LintProblem] = []
    for path in paths:
        if ".mjml" in path.name:
            name = (display or {}).get(path, str(path))
            problems.extend(lint(path.read_text(encoding="utf-8"), origin=name))
    return problems


# MRML writes attribute values with Rust's debug escaping: a no-break space in an alt or title attribute comes
# out as the literal text "\u{a0}", and so does any combining mark, format, control or separator character.
# Character references pass through untouched (and mean the same to HTML), so those characters go in as
# references. Newlines and tabs are MJML's own layout and stay.
_ESCAPED_BY_MRML = re.compile(r"[^\x00-\x7f]")


def _reference(match: re.Match[str]) -> str:
    char = match.group(0)
    if unicodedata.category(char)[0] in "MCZ" or char in "\u115f\u1160\u3164\uffa0":
        return f"&#x{ord(char):X};"
    return char


def encode_for_mrml(source: str) -> str:
    """``source`` with every character MRML would print as a ``\\u{..}`` escape written as a reference."""
    return _ESCAPED_BY_MRML.sub(_reference, source)


def to_html(source: str, *, origin: str = "rendered MJML") -> str:
    """Compile MJML; a parse failure becomes a TemplateError (with the line in the rendered MJML when known)."""
    problems = lint(source, origin=origin)
    if problems:
        raise problems[0].error()
    try:
        return str(mjml2html(encode_for_mrml(source), disable_comments=True))
    except ValueError as exc:
        raise TemplateError(f"MJML could not be compiled: {exc}", template=origin) from exc
