"""`digest db`: the store's schema."""

from __future__ import annotations

import click

from digest.cli import get_app
from digest.cli.output import print_json


@click.group("db")
def db() -> None:
    """Manage the store (SQLite by default, PostgreSQL via database_url)."""


@db.command("upgrade")
@click.option("--json", "as_json", is_flag=True, help="Print the revision as JSON.")
def upgrade(as_json: bool) -> None:
    """Apply every pending migration (also done automatically on first use)."""
    store = get_app().store
    store.upgrade()
    revision = store.current_revision()
    if as_json:
        print_json({"revision": revision, "dialect": store.dialect})
    else:
        click.echo(f"Store at revision {revision} ({store.dialect}).")


commands = [db]
