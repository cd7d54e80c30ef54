"""Templates: packaged defaults vs the repository's copy, lint, errors that name file and line, theme checks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from digest.errors import ConfigError, TemplateProblem
from digest.render import mjml, templates
from digest.render.edition import render_selection
from digest.render.templates import PACKAGE_TEMPLATES, TemplateError
from tests.render_helpers import EDITION_DATE, list_row, selection, settings

REPO = Path(__file__).resolve().parent.parent


def test_repository_templates_are_identical_to_packaged_defaults() -> None:
    # Deliberate duplication: templates/ is this project's editable copy, digest/templates/ ships in the wheel
    # (and is what `digest init` copies). They must not drift apart.
    packaged = {p.name: p.read_bytes() for p in PACKAGE_TEMPLATES.iterdir() if p.is_file()}
    project = {p.name: p.read_bytes() for p in (REPO / "templates").iterdir() if p.is_file()}
    assert set(packaged) == {"digest.mjml.j2", "_header.mjml.j2", "_article.mjml.j2", "_footer.mjml.j2",
                             "digest.txt.j2"}
    assert packaged == project


def test_default_templates_lint_clean() -> None:
    paths = [p for p in PACKAGE_TEMPLATES.iterdir() if p.is_file()]
    assert mjml.lint_files(paths) == []


def test_lint_rejects_unknown_mj_tags_with_line() -> None:
    source = "<mjml>\n  <mj-body>\n    <mj-section><mj-colum>\n</mj-colum></mj-section></mj-body></mjml>"
    problems = mjml.lint(source, origin="x.mjml.j2")
    assert next(str(p) for p in problems).startswith("x.mjml.j2:3: unknown MJML tag <mj-colum>")
    assert len(problems) == 2
    with pytest.raises(TemplateProblem, match="unknown MJML tag <mj-colum>"):
        mjml.to_html(source)


def _override(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "project" / "templates"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _default(name: str) -> str:
    return (PACKAGE_TEMPLATES / name).read_text(encoding="utf-8")


def test_project_templates_override_defaults(tmp_path: Path) -> None:
    s = settings(tmp_path)
    _override(tmp_path, "_footer.mjml.j2", _default("_footer.mjml.j2").replace("Manage your preferences",
                                                                               "Choose your topics"))
    rendered = render_selection(s, list_row(), EDITION_DATE, selection(1))
    assert "Choose your topics" in rendered.html
    assert "Manage your preferences" in rendered.text  # the text template was not overridden


def test_syntax_error_names_template_file_and_line(tmp_path: Path) -> None:
    s = settings(tmp_path)
    _override(tmp_path, "_article.mjml.j2", "<mj-section>\n<mj-column>\n{% if article.title %}\n</mj-column>\n")
    with pytest.raises(TemplateError) as info:
        render_selection(s, list_row(), EDITION_DATE, selection(1))
    assert info.value.template == "templates/_article.mjml.j2"
    assert info.value.line is not None and info.value.line >= 3
    assert str(info.value).startswith("templates/_article.mjml.j2:")


def test_undefined_variable_names_template_file_and_line(tmp_path: Path) -> None:
    s = settings(tmp_path)
    text = _default("_article.mjml.j2").replace("{{ article.byline }}", "{{ article.bylin }}")
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "article.bylin }}" in row)
    _override(tmp_path, "_article.mjml.j2", text)
    with pytest.raises(TemplateError) as info:
        render_selection(s, list_row(), EDITION_DATE, selection(1))
    assert (info.value.template, info.value.line) == ("templates/_article.mjml.j2", line)
    assert "bylin" in str(info.value)


def test_text_template_error_and_unknown_tag_in_project_template(tmp_path: Path) -> None:
    s = settings(tmp_path)
    _override(tmp_path, "digest.txt.j2", "line one\n{{ nothing_here }}\n")
    with pytest.raises(TemplateError, match=r"templates/digest.txt.j2:2: .*nothing_here"):
        render_selection(s, list_row(), EDITION_DATE, selection(1))
    (tmp_path / "project" / "templates" / "digest.txt.j2").unlink()
    _override(tmp_path, "_footer.mjml.j2", "<mj-section>\n  <mj-colum></mj-colum>\n</mj-section>\n")
    with pytest.raises(TemplateError, match=r"templates/_footer.mjml.j2:2: unknown MJML tag <mj-colum>"):
        render_selection(s, list_row(), EDITION_DATE, selection(1))


def test_subject_template_error_is_named(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="subject_template"):
        render_selection(settings(tmp_path, subject_template="{{ top_headline "), list_row(), EDITION_DATE,
                         selection(1))
    with pytest.raises(TemplateError, match="subject_template.*no_such"):
        render_selection(settings(tmp_path, subject_template="{{ no_such }}"), list_row(), EDITION_DATE,
                         selection(1))


def test_autoescape_on_for_mjml_off_for_text(tmp_path: Path) -> None:
    s = settings(tmp_path)
    env = templates.environment(s)
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"
    assert templates._autoescape("digest.mjml.j2") and not templates._autoescape("digest.txt.j2")


@pytest.mark.parametrize("theme, key", [
    ({"primary_color": "red; background:url(x)"}, "theme.primary_color"),
    ({"logo_url": "javascript:alert(1)"}, "theme.logo_url"),
    ({"language": "en\" onload=\"x"}, "theme.language"),
    ({"colour": "#fff"}, "colour"),
])
def test_theme_values_are_validated(tmp_path: Path, theme: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        render_selection(settings(tmp_path, theme=theme), list_row(), EDITION_DATE, selection(1))


def test_text_part_labels_the_read_on_link_as_the_html_part_does(tmp_path: Path) -> None:
    # The link itself is the headline's, printed under it: the text part says what it leads to, in the HTML
    # part's words; a summary-only item (nothing beyond its lede) is read on at its outlet.
    chosen = selection(3)
    chosen.items[1].article.deep_look_title = None  # body text (sections), no Deep Look of its own
    chosen.items[2].article.deep_look_title = None
    chosen.items[2].article.sections = []  # nothing beyond what the email shows
    rendered = render_selection(settings(tmp_path), list_row(), EDITION_DATE, chosen)
    blocks = [" ".join(b.split()) for b in re.split("(?:-{72}|={72})", rendered.text)]
    first, second, third = blocks[1:4]
    assert "Read the Deep Look: How the vote came together (at the link above)" in first
    assert "Read the full story (at the link above)" in second
    assert "Read on at Springfield Ledger (at the link above)" in third
    assert "Deep Look" not in second + third
    html = BeautifulSoup(rendered.html, "lxml")
    labels = [p.get_text(" ", strip=True) for p in html.select("p.read-on")]
    assert labels == ["Read the Deep Look: How the vote came together", "Read the full story",
                      "Read on at Springfield Ledger"]
