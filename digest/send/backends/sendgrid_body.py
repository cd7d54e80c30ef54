"""A SendGrid v3 Mail Send body as bytes, from a part encoded once per variant and a few strings per reader.

The HTML and text of a variant (some 60 KB) and its headers are the same in every request, so they are
JSON-encoded once (`VariantBody`); each reader then costs one personalization written out with the C string
encoder, instead of a dict of substitutions that `json.dumps` walks again for every request. A personalization
carries only the substitutions of the tokens the variant uses (SendGrid leaves a key that occurs nowhere alone, so
the others would only make every request longer: a thousand readers times twelve keys, most of them links). The
result is the JSON `SendGridBackend._static_payload` plus the personalizations would encode to (a test compares
them).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from markupsafe import escape

from digest.render.personalize import (
    _CONTROL,
    CONTEXTS,
    FIELDS,
    TOKEN_PATTERN,
    TOKENS,
    HeaderInjection,
    name_fallback,
)
from digest.send.backends.base import Recipient, Schedule

_enc: Callable[[str], str] = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]
# What markupsafe escapes: a value without any of these is its own HTML form.
_HTML_SPECIAL = ("&", "<", ">", '"', "'")


def used_tokens(*parts: str) -> set[str]:
    """The personal tokens that occur in a variant's subject, HTML and text."""
    return {m.group(0) for part in parts for m in TOKEN_PATTERN.finditer(part)}


def encode_static(static: dict[str, Any]) -> bytes:
    """The request's shared part, without its opening brace, to follow the personalizations."""
    encoded = json.dumps(static)
    return encoded[1:].encode() if encoded != "{}" else b"}"


class VariantBody:
    """One variant's requests: the shared part encoded once, and the shape of a reader's substitutions (which
    tokens, in the order `personalize.substitutions` writes them) worked out once."""

    def __init__(self, static: dict[str, Any], used: set[str], *, edition_id: int, mailto: str | None,
                 language: str) -> None:
        self.static = encode_static(static)
        # Each substitution, in `substitutions`' order: its key, and where its value is in `_values`' tuple
        # (the HTML-escaped form of a field, or the raw one for text and headers).
        keys = [(_enc(token), FIELDS.index(name) + (0 if context == "html" else len(FIELDS)))
                for context in CONTEXTS for name, token in TOKENS[context].items() if token in used]
        self._template = "{" + ",".join(f"{key}:%s" for key, _ in keys) + "}"
        picks = [index for _, index in keys]
        # itemgetter of one index returns the item, not a 1-tuple: `%` needs a tuple either way.
        self._pick: Callable[[tuple[str, ...]], tuple[str, ...]] = (
            itemgetter(*picks) if len(picks) > 1 else lambda values: tuple(values[i] for i in picks))
        self._args = f',"custom_args":{{"edition_id":"{int(edition_id)}","subscriber_id":"'
        self._mailto = f", <{mailto}>" if mailto else ""
        self._fallback = name_fallback(language)

    def personalization(self, r: Recipient, to_email: str) -> str:
        """One reader's personalization, as `SendGridBackend.build_payload`'s dict of it would encode."""
        p = r.person
        name = (p.name or "").strip() or self._fallback
        raw = (name, p.email, p.unsubscribe_url, p.preferences_url)
        joined = "".join(raw)
        # isprintable and `in` run in C over the string; the patterns only for the rare value they let through.
        if not joined.isprintable() and _CONTROL.search(joined):
            bad = next(v for v in raw if _CONTROL.search(v))
            raise HeaderInjection(f"a header value contains a line break or control character: {bad!r}")
        encoded = tuple(map(_enc, raw))
        html = (tuple(_enc(str(escape(v))) for v in raw)
                if any(c in joined for c in _HTML_SPECIAL) else encoded)
        subs = self._template % self._pick(html + encoded)
        to = f'{{"email":{_enc(to_email)}' + (f',"name":{_enc(p.name)}}}' if p.name else "}")
        unsubscribe = _enc(f"<{p.unsubscribe_url}>{self._mailto}")
        return (f'{{"to":[{to}],"substitutions":{subs}{self._args}{r.subscriber_id}","delivery_id":"'
                f'{r.delivery_id}"}},"headers":{{"List-Unsubscribe":{unsubscribe}}}}}')

    def encode(self, people: Sequence[str], schedule: Schedule | None) -> bytes:
        head = '{"personalizations":[' + ",".join(people) + "]"
        if schedule is not None:
            head += f',"send_at":{int(schedule.send_at)},"batch_id":{_enc(schedule.batch_id)}'
        return head.encode() + (b"," + self.static if self.static != b"}" else self.static)
