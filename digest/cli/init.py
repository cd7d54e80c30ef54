"""`digest init DIR`: a new newsroom folder with a commented digest.toml, the default templates and subscribers/."""

from __future__ import annotations

import secrets
from pathlib import Path

import click

from digest.config import CONFIG_FILENAME, render_toml_template
from digest.errors import DigestError
from digest.i18n.languages import SUPPORTED
from digest.render.templates import PACKAGE_TEMPLATES


def init_project(target: Path) -> list[Path]:
    """Write the skeleton into ``target``; refuses (writing nothing) if any file it would write exists."""
    templates = sorted(p for p in PACKAGE_TEMPLATES.rglob("*") if p.is_file() and p.name.endswith(".j2"))
    plan: dict[Path, str] = {target / CONFIG_FILENAME: _config_text()}
    for source in templates:
        plan[target / "templates" / source.relative_to(PACKAGE_TEMPLATES)] = source.read_text(encoding="utf-8")
    existing = [p for p in plan if p.exists()]
    if existing:
        raise DigestError("refusing to overwrite existing file(s): " + ", ".join(str(p) for p in existing))
    if target.exists() and not target.is_dir():
        raise DigestError(f"{target}: exists and is not a folder")
    (target / "subscribers").mkdir(parents=True, exist_ok=True)
    for path, text in plan.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        # "x": never clobber a file that appeared since the check above.
        with path.open("x", encoding="utf-8") as fh:
            fh.write(text)
    return [*plan, target / "subscribers"]


def _config_text() -> str:
    text = render_toml_template()
    line = '# secret_key = ""'
    if line not in text:  # the foundation changed the template; fail loudly rather than write no secret
        raise DigestError("digest.toml template has no secret_key line to fill in")
    text = text.replace(line, f'secret_key = "{secrets.token_urlsafe(32)}"', 1)
    theme = "# theme = {}"
    if theme not in text:
        raise DigestError("digest.toml template has no theme line to show the language in")
    # The language is the one theme key a newsroom abroad changes first: shown, still commented.
    return text.replace(theme, "# The readers' language, unless the list (`digest lists set NAME --language TAG`) or the "
                        "subscriber sets one: " + ", ".join(SUPPORTED) + ".\n"
                        '# theme = {language = "en"}', 1)


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def init_command(directory: Path) -> None:
    """Set up a newsroom folder DIRECTORY: digest.toml, templates/ and subscribers/.

    digest.toml lists every setting, commented out at its default, plus a fresh random secret_key (keep that
    file out of version control). templates/ is a copy of the built-in templates to edit. Existing files are
    never overwritten.
    """
    written = init_project(directory)
    click.echo(f"Created a newsroom folder in {directory}:")
    for path in written:
        click.echo(f"  {path}")
    click.echo(f"Next: cd {directory} && digest ingest ... && digest build (digest.toml holds a secret key: "
               "do not commit it).")


commands = [init_command]
