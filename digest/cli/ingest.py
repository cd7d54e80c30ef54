"""`digest ingest`: read articles from files, folders, feed URLs or standard input into the store."""

from __future__ import annotations

import sys
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from digest.cli import get_app
from digest.cli.output import print_json, print_table
from digest.config import Settings
from digest.errors import ConfigError
from digest.ingest.pipeline import FORMATS, ingest_sources
from digest.ingest.topics import parse_outlet_names, parse_rules


def parse_time_option(value: str | None, settings: Settings, option: str) -> datetime | None:
    """An ISO 8601 time from the command line; without a zone it is the newsroom's (the `timezone` setting)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time such as 2025-08-16T07:30 or "
                                 "2025-08-16T07:30:00+02:00", param_hint=option) from None
    if parsed.tzinfo is None:
        try:
            parsed = parsed.replace(tzinfo=ZoneInfo(settings.timezone))
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"timezone: unknown time zone {settings.timezone!r}") from None
    return parsed


@click.command("ingest")
@click.argument("sources", nargs=-1, required=True, metavar="SOURCE...")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="How to read the sources; auto: markup is a feed, [ or { is JSON, other text is Newslooks.")
@click.option("--published", metavar="ISO",
              help="Publication time for articles whose source gives none (Newslooks text always); without a "
                   "zone, the newsroom's timezone. Default: the time each article is first ingested.")
@click.option("--topic", "topics", multiple=True, metavar="T",
              help="Topic to give every article read (repeatable), before topic_rules and feed categories.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def ingest_command(ctx: click.Context, sources: tuple[str, ...], fmt: str, published: str | None,
                   topics: tuple[str, ...], as_json: bool) -> None:
    """Ingest articles from SOURCE...: Newslooks text files, RSS/Atom feeds (files or http(s) URLs), JSON
    exports, folders of them, or - for standard input.

    Advertising items are not stored; the report lists them as skipped, with the reason. Re-ingesting an
    article updates it, never duplicates it. Each source is stored in its own transaction: a
    broken one is reported with its reason and changes nothing, the others are still stored, and the exit code
    is 1.
    """
    app = get_app()
    settings = app.settings
    when = parse_time_option(published, settings, "--published")
    rules = parse_rules(settings.topic_rules)
    report = ingest_sources(app.store, list(sources), fmt=fmt, published=when, topics=topics, rules=rules,
                            feed_timeout=float(settings.feed_timeout),
                            outlet_names=parse_outlet_names(settings.outlet_names),
                            read_stdin=lambda: sys.stdin.buffer.read())
    if as_json:
        print_json(report.to_json())
    else:
        print_table(["source", "format", "new", "updated", "unchanged", "status"],
                    [(s.source, s.format or "", s.new, s.updated, s.unchanged,
                      "ok" if s.status == "ok" else f"FAILED: {s.error}") for s in report.sources],
                    title="digest ingest")
        totals = report.totals
        skipped = sum(len(s.skipped) for s in report.sources)
        click.echo(f"{totals['new']} new, {totals['updated']} updated, {totals['unchanged']} unchanged, "
                   f"{totals['failed']} failed source(s)" + (f", {skipped} item(s) skipped." if skipped else "."))
        for source in report.sources:
            for item in source.skipped:
                click.echo(f"Skipped: {source.source}: {item.title[:80]!r}: {item.reason}")
    for source in report.sources:
        for warning in source.warnings:
            click.echo(f"Warning: {warning}", err=True)
        if source.error:
            click.echo(f"Error: {source.error}", err=True)
    if report.failed:
        ctx.exit(1)


commands = [ingest_command]
