"""The `digest` command. Each module in this package contributes commands through a ``commands`` list.

Command modules are thin: parse options, call the library, print (rich tables, or JSON with --json).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Any

import click

from digest.app import App
from digest.errors import DigestError


class DigestGroup(click.Group):
    """Turns the project's own errors into one clear line and a non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=DigestGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar="DIGEST_CONFIG",
              help="Path of digest.toml (default: ./digest.toml if present).")
@click.version_option(package_name="digest")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """digest: build a newsroom's daily email digest and send it exactly once to every subscriber.

    The pipeline is ingest → rank → render → send; `digest COMMAND --help` explains each command.
    """
    ctx.obj = _LazyApp(config_path)
    ctx.call_on_close(ctx.obj.close)


class _LazyApp:
    """Loads settings only when a command needs them, so `--help` works even with a broken digest.toml."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._app: App | None = None

    def get(self) -> App:
        if self._app is None:
            self._app = App.load(self.config_path)
        return self._app

    def close(self) -> None:
        if self._app is not None:
            self._app.close()


pass_app = click.make_pass_decorator(_LazyApp)


def get_app(ctx: click.Context | None = None) -> App:
    ctx = ctx or click.get_current_context()
    lazy = ctx.find_object(_LazyApp)
    if lazy is None:  # invoked outside `main`, e.g. a command tested alone
        lazy = _LazyApp(None)
        ctx.obj = lazy
        ctx.call_on_close(lazy.close)
    return lazy.get()


def _register() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "output":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for command in getattr(module, "commands", []):
            main.add_command(command)


_register()
