"""The catalogs: every message of the source translated in every language, with the same placeholders; the
template (digest.pot) up to date with the code; French spacing in the catalogue; the Jinja helper."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from jinja2 import Environment

from digest.i18n import catalog, jinja, messages
from digest.i18n.languages import SOURCE, SUPPORTED

REPO = Path(__file__).resolve().parent.parent
TRANSLATED = [tag for tag in SUPPORTED if tag != SOURCE]
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


def _key(message: Message) -> tuple[str | None, str]:
    mid = message.id
    return message.context, mid if isinstance(mid, str) else mid[0]


def _source_ids() -> set[tuple[str | None, str]]:
    return {_key(m) for m in _read(catalog.TEMPLATE) if m.id}


def test_the_template_holds_every_message_the_code_and_templates_use() -> None:
    with (REPO / "babel.cfg").open(encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    found = {(context, mid if isinstance(mid, str) else mid[0])
             for _, _, mid, _, context in extract_from_dir(str(REPO), method_map, options_map)
             if mid}
    missing = found - _source_ids()
    assert not missing, f"run `make messages` and translate: {sorted(missing)}"
    stale = _source_ids() - found
    assert not stale, f"no longer used (run `make messages`): {sorted(stale)}"


def test_the_email_s_words_are_in_the_template() -> None:
    ids = {mid for _, mid in _source_ids()}
    assert set(messages.email_messages()) - ids == set()


@pytest.mark.parametrize("tag", TRANSLATED)
def test_every_message_is_translated_with_the_same_placeholders(tag: str) -> None:
    po = _read(catalog.po_path(tag), tag.replace("-", "_"))
    entries = {_key(m): m for m in po if m.id}
    missing = sorted(_source_ids() - set(entries))
    assert not missing, f"{catalog.po_path(tag)} lacks {missing} (run `make messages`, then translate)"
    for key, entry in entries.items():
        if key not in _source_ids():
            continue
        assert "fuzzy" not in entry.flags, f"{tag}: {key[1]!r} is marked fuzzy: check the translation"
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        assert all(s.strip() for s in strings), f"{tag}: {key[1]!r} has no translation"
        wanted = set(PLACEHOLDER.findall(key[1]))
        for text in strings:
            # Plural forms may leave out the count, never invent a placeholder the code does not fill.
            used = set(PLACEHOLDER.findall(text))
            assert used <= wanted | {"num"}, f"{tag}: {key[1]!r} → {text!r} uses {used - wanted}"
            if isinstance(entry.id, str):
                assert used == wanted, f"{tag}: {key[1]!r} → {text!r} drops {wanted - used}"


def test_french_catalogue_keeps_its_punctuation_spaces() -> None:
    for entry in _read(catalog.po_path("fr"), "fr"):
        if not entry.id:
            continue  # the header
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        for text in strings:
            assert not re.search(r" [:;?!»]|« ", text), f"fr: {text!r} has a breaking space before punctuation"


def test_translations_come_from_the_po_files_without_a_compile_step() -> None:
    assert catalog.translate("de", "Unsubscribe") == "Abbestellen"
    assert catalog.translate("pt-BR", "Hello %(name)s,", name="Ana") == "Olá, Ana,"
    assert catalog.translate("en", "Hello %(name)s,", name="Ana") == "Hello Ana,"
    assert catalog.translate_plural("fr", "%(num)s story", "%(num)s stories", 1) == "1 article"
    assert catalog.translate_plural("fr", "%(num)s story", "%(num)s stories", 4) == "4 articles"
    assert catalog.translate_in("it", "greeting of a reader without a name", "there") == "a tutti"


def test_the_jinja_helper_fixed_or_per_render() -> None:
    source = ('{% trans name=who, num=3 %}Hello {{ name }}, here is today\'s story.{% pluralize num %}'
              'Hello {{ name }}, here are today\'s {{ num }} stories.{% endtrans %} '
              '{{ _("Unsubscribe") }} {{ ngettext("%(num)s story", "%(num)s stories", 3) }}')
    fixed = jinja.install(Environment(autoescape=True), "de")
    assert fixed.from_string(source).render(who="<Jürgen>") == (
        "Hallo &lt;Jürgen&gt;, hier sind die 3 Artikel des Tages. Abbestellen 3 Artikel")
    shared = jinja.install(Environment(autoescape=True))
    template = shared.from_string(source)
    assert template.render(who="Ana", language="es").startswith("Hola, Ana: estas son las 3 noticias")
    assert template.render(who="Ana", language="pt-BR").endswith("3 notícias")
    assert template.render(who="Ana").startswith("Hello Ana, here are")  # no language: the source
