"""The preview's checks panel: what would go wrong in an inbox, found before sending.

Each check looks at the final HTML or the complete .eml: size against Gmail's clip, images a screen reader
cannot describe, links a mail client would not open safely, and (when installed) SpamAssassin's local-rules score.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Literal
from urllib.parse import urlsplit

from bs4 import BeautifulSoup

Status = Literal["ok", "warn", "fail", "skipped"]

SAFE_LINK_SCHEMES = frozenset({"http", "https"})
# mailto: is fine in the List-Unsubscribe header (RFC 2369), but in the body it opens a blank draft in many
# clients and hides where the reader is sent, so the preview flags it there.
SAFE_UNSUBSCRIBE_SCHEMES = frozenset({"http", "https", "mailto"})
SPAM_THRESHOLD = 5.0
SPAM_WARN = 2.0


@dataclass
class Check:
    name: str
    status: Status
    summary: str
    details: list[str] = field(default_factory=list)
    value: float | int | None = None

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "status": self.status, "summary": self.summary, "details": self.details,
                "value": self.value}


def check_size(html: str, max_bytes: int) -> Check:
    size = len(html.encode("utf-8"))
    summary = f"{size:,} bytes of {max_bytes:,} ({size / max_bytes:.0%})"
    if size >= max_bytes:
        return Check("size", "fail", summary + ": Gmail clips the message", value=size)
    if size >= max_bytes * 0.9:
        return Check("size", "warn", summary + ": close to Gmail's clip", value=size)
    return Check("size", "ok", summary, value=size)


def check_images(html: str) -> Check:
    soup = BeautifulSoup(html, "html.parser")
    images = soup.find_all("img")
    missing: list[str] = []
    for img in images:
        alt = img.get("alt")
        if not isinstance(alt, str) or not alt.strip():
            src = img.get("src")
            missing.append(src if isinstance(src, str) and src else "(image without src)")
    if missing:
        return Check("images", "fail", f"{len(missing)} of {len(images)} image(s) without alt text", missing,
                     value=len(missing))
    return Check("images", "ok", f"{len(images)} image(s), all with alt text", value=0)


def _scheme(url: str) -> str:
    return urlsplit(url.strip()).scheme.lower()


def check_links(html: str) -> Check:
    soup = BeautifulSoup(html, "html.parser")
    anchors = soup.find_all("a")
    ids = {el.get("id") for el in soup.find_all(id=True)} | {el.get("name") for el in soup.find_all("a", attrs={"name": True})}
    bad: list[str] = []
    for a in anchors:
        href = a.get("href")
        if not isinstance(href, str) or not href.strip():
            bad.append(f"(link without href) {a.get_text(' ', strip=True)[:60]}")
        elif href.strip().startswith("#"):
            # A jump within the email (the "top stories" list) is fine as long as its target exists.
            if href.strip()[1:] not in ids:
                bad.append(f"{href} (no element with this id)")
        elif _scheme(href) not in SAFE_LINK_SCHEMES:
            bad.append(href)
    if bad:
        return Check("links", "fail", f"{len(bad)} of {len(anchors)} link(s) not http(s)", bad, value=len(bad))
    return Check("links", "ok", f"{len(anchors)} link(s), all http(s)", value=0)


def check_list_unsubscribe(eml: bytes) -> Check:
    message = message_from_bytes(eml, policy=default_policy)
    header = message.get("List-Unsubscribe")
    if not header:
        return Check("list-unsubscribe", "fail", "no List-Unsubscribe header")
    entries = re.findall(r"<([^>]*)>", str(header))
    bad = [e for e in entries if _scheme(e) not in SAFE_UNSUBSCRIBE_SCHEMES]
    details = list(entries)
    if not entries or bad:
        return Check("list-unsubscribe", "fail", "List-Unsubscribe entries must be <https:...> or <mailto:...>",
                     bad or [str(header)])
    one_click = str(message.get("List-Unsubscribe-Post", "")).strip() == "List-Unsubscribe=One-Click"
    if not one_click:
        return Check("list-unsubscribe", "warn", "no List-Unsubscribe-Post: List-Unsubscribe=One-Click", details)
    return Check("list-unsubscribe", "ok", f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}, one-click",
                 details)


_RULE_LINE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s+(.*)$")
_STATUS_SCORE = re.compile(r"score=(-?\d+(?:\.\d+)?)")
_REPORT_SCORE = re.compile(r"Content analysis details:\s*\((-?\d+(?:\.\d+)?) points")


def parse_spamassassin(output: str) -> tuple[float, list[str]]:
    """Score and "points RULE description" lines from `spamassassin -t` output (message plus report)."""
    match = _REPORT_SCORE.search(output) or _STATUS_SCORE.search(output)
    if match is None:
        raise ValueError("no score in spamassassin output")
    rules: list[str] = []
    in_table = False
    for line in output.splitlines():
        if line.lstrip().startswith("pts rule name"):
            in_table = True
            continue
        if in_table:
            if line.startswith("----"):
                continue
            rule = _RULE_LINE.match(line)
            if rule is None:
                if line.startswith((" ", "\t")) and rules:  # a wrapped description
                    rules[-1] += " " + line.strip()
                    continue
                break
            rules.append(f"{rule.group(1)} {rule.group(2)} {rule.group(3).strip()}")
    return float(match.group(1)), rules


def _stable_digest(eml: bytes) -> str:
    """Hash of the message without the headers that change on every build, so a rebuild reuses the score."""
    head, _, body = eml.partition(b"\r\n\r\n") if b"\r\n\r\n" in eml else eml.partition(b"\n\n")
    kept = [line for line in re.split(rb"\r?\n(?![ \t])", head)
            if not line.lower().startswith((b"date:", b"message-id:"))]
    return hashlib.sha256(b"\n".join(kept) + b"\n\n" + body).hexdigest()


class SpamChecker:
    """Runs SpamAssassin with local rules only (no network tests), caching the score per message content."""

    def __init__(self, executable: str | None = None, timeout: float = 60.0) -> None:
        self.executable = executable if executable is not None else shutil.which("spamassassin")
        self.timeout = timeout
        self._cache: dict[str, Check] = {}

    def check(self, eml: bytes) -> Check:
        if not self.executable:
            return Check("spamassassin", "skipped", "spamassassin is not installed")
        key = _stable_digest(eml)
        if key in self._cache:
            return self._cache[key]
        try:
            done = subprocess.run([self.executable, "-L", "-t"], input=eml, capture_output=True,
                                  timeout=self.timeout, check=False)
            score, rules = parse_spamassassin(done.stdout.decode("utf-8", "replace"))
        except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
            return Check("spamassassin", "warn", f"spamassassin did not give a score: {exc}")
        status: Status = "fail" if score >= SPAM_THRESHOLD else "warn" if score > SPAM_WARN else "ok"
        result = Check("spamassassin", status, f"score {score:.1f} (spam at {SPAM_THRESHOLD:.1f})", rules,
                       value=score)
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = result
        return result


def run_checks(html: str, eml: bytes, *, max_html_bytes: int, spam: SpamChecker | None = None) -> list[Check]:
    checks = [check_size(html, max_html_bytes), check_images(html), check_links(html), check_list_unsubscribe(eml)]
    if spam is not None:
        checks.append(spam.check(eml))
    return checks
