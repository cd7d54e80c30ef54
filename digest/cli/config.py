"""`digest config`: the resolved settings, secrets masked."""

from __future__ import annotations

import click

from digest.cli import get_app
from digest.cli.output import json_option, print_json, print_table
from digest.config import KEYS


@click.command("config")
@json_option
def config_command(as_json: bool) -> None:
    """Show every setting's value and where it came from (file, environment or default); secrets masked."""
    settings = get_app().settings
    values = settings.redacted()
    origin = {k.name: settings.origin(k.name) for k in KEYS}
    if as_json:
        print_json({"config_file": str(settings.source) if settings.source else None,
                    "settings": values, "origin": origin})
        return
    print_table(["key", "value", "from"], [(k.name, values[k.name], origin[k.name]) for k in KEYS],
                title=f"digest settings ({settings.source or 'no digest.toml'})")


commands = [config_command]
