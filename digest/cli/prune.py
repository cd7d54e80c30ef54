"""`digest db prune`: retention of events and delivery rows (attached to the `db` group)."""

from __future__ import annotations

import click

from digest.cli import get_app
from digest.cli.db import db
from digest.cli.output import print_json
from digest.errors import ConfigError
from digest.feedback.prune import prune as prune_store


@click.command("prune")
@click.option("--older-than-days", type=click.IntRange(min=1), default=None, metavar="N",
              help="Prune editions whose cut-off is more than N days ago (default: retention_days).")
@click.option("--dry-run", is_flag=True, help="Count what would be removed; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def prune(older_than_days: int | None, dry_run: bool, as_json: bool) -> None:
    """Remove old events, delivery rows and send batches, folding their counts into per-edition totals first, so
    `digest stats` shows the same numbers afterwards. Editions still sending are left alone."""
    app = get_app()
    days = older_than_days if older_than_days is not None else int(app.settings.retention_days)
    if days < 1:
        raise ConfigError(f"retention_days must be at least 1, not {days}")
    with app.store.session() as session:
        # A dry run writes nothing, so committing its read-only transaction is harmless.
        report = prune_store(session, older_than_days=days, dry_run=dry_run)
    if as_json:
        print_json(report.to_json())
        return
    verb = "Would remove" if dry_run else "Removed"
    click.echo(f"{verb} {report.events} event(s), {report.deliveries} delivery row(s) and {report.batches} send "
               f"batch(es) from {report.editions} edition(s) older than {report.cutoff:%Y-%m-%d %H:%M} UTC"
               f"{'' if dry_run else '; their counts are kept in the edition totals'}.")


db.add_command(prune)
