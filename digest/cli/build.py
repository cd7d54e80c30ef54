"""`digest build`: render an edition to files (HTML, text, MJML, .eml) for a look before sending."""

from __future__ import annotations

from datetime import datetime

import click

from digest.audience.lists import ensure_list
from digest.cli import get_app
from digest.cli.output import json_option, list_option, print_json
from digest.editions import upcoming_date
from digest.render.build import build_edition


@click.command("build")
@list_option
@click.option("--date", "date_", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="Edition date (default: the list's upcoming edition: today's in the list's time zone, or "
                   "tomorrow's once today's has gone out or its send time is past catch_up_hours).")
@click.option("--subscriber", metavar="EMAIL",
              help="Render as this subscriber sees it (default: the list's first active subscriber, else a "
                   "fictional reader@example.org).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="editions", show_default=True,
              help="Folder to write <list>-<date>.html, .txt, .mjml and .eml into (relative to the project).")
@json_option
def build_command(list_name: str | None, date_: datetime | None, subscriber: str | None, out_dir: str,
                  as_json: bool) -> None:
    """Render an edition and write <list>-<date>.html, .txt, .mjml and .eml.

    The .eml is the complete message as it would be sent (headers included). Prints the HTML's size in bytes
    against max_html_bytes, the number of articles, and anything the size guard trimmed.
    """
    app = get_app()
    out = app.settings.path(out_dir)
    with app.store.session() as session:
        list_row = ensure_list(session, app.settings, list_name)
        edition_date = date_.date() if date_ else upcoming_date(session, app.settings, list_row)
        result = build_edition(session, app.settings, list_row, edition_date, subscriber_email=subscriber,
                               out_dir=out)
    if as_json:
        print_json(result.to_json())
        return
    r = result.rendered
    click.echo(f"Built {result.list_name} {result.edition_date.isoformat()} for {result.recipient}: "
               f"{r.article_count} article{'s' if r.article_count != 1 else ''}, "
               f"{result.html_bytes:,} bytes of HTML (limit {r.max_html_bytes:,})")
    click.echo(f"Subject: {r.subject}")
    for note in r.trimmed:
        click.echo(f"Trimmed: {note}")
    for kind, path in result.files.items():
        click.echo(f"  {kind:4} {path}")


commands = [build_command]
