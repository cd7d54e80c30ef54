"""A SendGrid v3 Mail Send body as bytes, from a part encoded once per variant and a few strings per reader.

The HTML and text of a variant (some 60 KB) and its headers are the same in every request, so they are
JSON-encoded once; each reader then costs one personalization written out with the C string encoder, instead of
a dict of a dozen substitutions that `json.dumps` walks again for every request. The result is the JSON
`SendGridBackend._static_payload` plus the personalizations would encode to (a test compares them).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from markupsafe import escape

from digest.i18n.languages import SOURCE
from digest.render.personalize import _CONTROL, CONTEXTS, FIELDS, TOKENS, HeaderInjection, name_fallback
from digest.send.backends.base import Recipient, Schedule

_enc: Callable[[str], str] = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]
# The twelve substitution keys, in the order `personalize.substitutions` writes them, already encoded.
_KEYS = [(context, FIELDS.index(name), _enc(token)) for context in CONTEXTS for name, token in TOKENS[context].items()]


def encode_static(static: dict[str, Any]) -> bytes:
    """The request's shared part, without its opening brace, to follow the personalizations."""
    encoded = json.dumps(static)
    return encoded[1:].encode() if encoded != "{}" else b"}"


def personalization(r: Recipient, edition_id: int, mailto: str | None, to_email: str,
                    language: str = SOURCE) -> str:
    """One reader's personalization, as `SendGridBackend.build_payload`'s dict of it would encode; ``language``
    (the email's) words the greeting of a reader without a name."""
    p = r.person
    name = (p.name or "").strip() or name_fallback(language)
    raw = (name, p.email, p.unsubscribe_url, p.preferences_url)
    for value in raw:
        if _CONTROL.search(value):
            raise HeaderInjection(f"a header value contains a line break or control character: {value!r}")
    html = tuple(str(escape(v)) for v in raw)
    subs = ",".join(f"{key}:{_enc(html[i] if context == 'html' else raw[i])}" for context, i, key in _KEYS)
    to = f'{{"email":{_enc(to_email)}' + (f',"name":{_enc(p.name)}}}' if p.name else "}")
    unsubscribe = f"<{p.unsubscribe_url}>" + (f", <{mailto}>" if mailto else "")
    return (f'{{"to":[{to}],"substitutions":{{{subs}}},"custom_args":{{"edition_id":"{edition_id}",'
            f'"subscriber_id":"{r.subscriber_id}","delivery_id":"{r.delivery_id}"}},'
            f'"headers":{{"List-Unsubscribe":{_enc(unsubscribe)}}}}}')


def encode_body(static: bytes, people: Sequence[str], schedule: Schedule | None) -> bytes:
    head = '{"personalizations":[' + ",".join(people) + "]"
    if schedule is not None:
        head += f',"send_at":{int(schedule.send_at)},"batch_id":{_enc(schedule.batch_id)}'
    return head.encode() + (b"," + static if static != b"}" else static)
