"""`digest lists`: create, show, change and remove mailing lists."""

from __future__ import annotations

from typing import Any

import click

from digest.audience import lists as lists_lib
from digest.cli import get_app
from digest.cli.output import json_option, print_json, print_table

min_articles_option = click.option(
    "--min-articles", type=int, metavar="N",
    help="Fewest articles in this list's editions, fewer is a thin day (overrides the setting min_articles).")
max_articles_option = click.option(
    "--max-articles", type=int, metavar="N",
    help="Most articles in this list's editions, at least 1 (overrides the setting max_articles).")
language_option = click.option(
    "--language", metavar="TAG",
    help="Language of the list's emails and pages, a BCP 47 tag: en, de, fr, es, pt-BR or it (default: "
         "theme.language). A subscriber's own language overrides it.")
thin_days_option = click.option(
    "--skip-thin-days/--send-thin-days", "skip_thin_days", default=None,
    help="Skip a thin day's edition, or send it thin (overrides the setting skip_thin_days).")


@click.group("lists")
def lists_group() -> None:
    """Manage mailing lists (from address, topics offered, send time, time zone, language, opt-in mode,
    article limits)."""


@lists_group.command("create")
@click.argument("name")
@click.option("--title", help="Human name shown on the public pages (default: NAME).")
@click.option("--from-email", metavar="ADDRESS", help="From address (default: config from_email).")
@click.option("--from-name", metavar="NAME", help="From name (default: config from_name).")
@click.option("--reply-to", metavar="ADDRESS", help="Reply-To address (default: config reply_to, or none).")
@click.option("--timezone", "timezone_", metavar="TZ", help="IANA time zone, e.g. Europe/Berlin (default: config "
              "timezone).")
@click.option("--send-time", metavar="HH:MM", help="Local send time (default: config send_time).")
@language_option
@click.option("--topics", metavar="A,B", help="Comma-separated topics subscribers may choose from.")
@click.option("--single-opt-in", is_flag=True, help="Subscribers from the public form are active at once, "
              "without a confirmation email (default: config double_opt_in).")
@min_articles_option
@max_articles_option
@thin_days_option
@json_option
def create(name: str, title: str | None, from_email: str | None, from_name: str | None, reply_to: str | None,
           timezone_: str | None, send_time: str | None, language: str | None, topics: str | None,
           single_opt_in: bool,
           min_articles: int | None, max_articles: int | None, skip_thin_days: bool | None,
           as_json: bool) -> None:
    """Create the mailing list NAME.

    --min-articles, --max-articles and --skip-thin-days/--send-thin-days override the settings for this list;
    left out, the list follows the settings (change them later with `digest lists set`).
    """
    app = get_app()
    with app.store.session() as session:
        row = lists_lib.create_list(session, app.settings, name, from_email=from_email, from_name=from_name,
                                    reply_to=reply_to, timezone=timezone_, send_time=send_time, topics=topics,
                                    double_opt_in=False if single_opt_in else None, title=title,
                                    min_articles=min_articles, max_articles=max_articles,
                                    skip_thin_days=skip_thin_days, language=language)
        data = lists_lib.list_to_json(row, settings=app.settings)
    if as_json:
        print_json(data)
    else:
        click.echo(f"Created list {data['name']!r} (from {data['from_name']} <{data['from_email']}>, "
                   f"{data['send_time']} {data['timezone']}, {data['effective']['language']}, "
                   f"{'double' if data['double_opt_in'] else 'single'} opt-in; {_limits_text(data)}).")


@lists_group.command("set")
@click.argument("name")
@min_articles_option
@max_articles_option
@thin_days_option
@click.option("--clear-limits", is_flag=True, help="Follow the settings' min_articles, max_articles and "
              "skip_thin_days again; any of the options above given too is then set.")
@click.option("--archive", type=click.Choice(["public", "private"]), default=None,
              help="public: sent editions are on /archive/NAME, with a web version and an Atom feed, and emails "
                   "link to their web version; private: those pages answer 404 (default of new lists: public).")
@language_option
@click.option("--clear-language", is_flag=True, help="Follow theme.language again.")
@json_option
def set_limits(name: str, min_articles: int | None, max_articles: int | None, skip_thin_days: bool | None,
               clear_limits: bool, archive: str | None, language: str | None, clear_language: bool,
               as_json: bool) -> None:
    """Set the list NAME's own article limits (min_articles, max_articles, skip_thin_days), archive and language.

    A value set here overrides the setting of that name for this list's editions; only the options given
    change (without any, it only prints them). A value that does not fit (max below 1, min below 0 or above
    max, taking the list's or the settings' value for the one not given) is refused, naming the option, and
    nothing changes. An unknown --language is refused with the supported tags. Prints the list's own values
    (null: follows the settings) and the ones in force.
    """
    if clear_language and language:
        raise click.UsageError("give --language or --clear-language, not both")
    app = get_app()
    with app.store.session() as session:
        row = lists_lib.get_list(session, name)
        if language is not None or clear_language:
            lists_lib.set_list_language(session, row, language)
        row = lists_lib.set_list_limits(session, app.settings, row,
                                        min_articles=min_articles, max_articles=max_articles,
                                        skip_thin_days=skip_thin_days, clear=clear_limits)
        if archive is not None:
            row.archive = archive
        data = lists_lib.list_to_json(row, settings=app.settings)
    if as_json:
        print_json(data)
    else:
        text = f"{data['name']}: {_limits_text(data)}"
        if archive:
            text += f"; archive {data['archive']}"
        if language is not None or clear_language:
            text += f"; language {data['effective']['language']} ({'own' if data['language'] else 'theme.language'})"
        click.echo(text)


def _limits_text(data: dict[str, Any]) -> str:
    """e.g. "min_articles 2 (own), max_articles 8 (settings), thin days sent (settings)"."""
    def origin(key: str) -> str:
        return "settings" if data[key] is None else "own"

    effective = data["effective"]
    thin = "skipped" if effective["skip_thin_days"] else "sent"
    return (f"min_articles {effective['min_articles']} ({origin('min_articles')}), "
            f"max_articles {effective['max_articles']} ({origin('max_articles')}), "
            f"thin days {thin} ({origin('skip_thin_days')})")


@lists_group.command("ls")
@json_option
def ls(as_json: bool) -> None:
    """List every mailing list with its subscriber counts."""
    app = get_app()
    with app.store.session() as session:
        counts = lists_lib.subscriber_counts(session)
        data = [lists_lib.list_to_json(row, counts.get(row.id, {}), app.settings)
                for row in lists_lib.all_lists(session)]
    if as_json:
        print_json(data)
        return
    print_table(["name", "from", "send time", "time zone", "topics", "opt-in", "active", "total"],
                [[d["name"], f"{d['from_name']} <{d['from_email']}>", d["send_time"], d["timezone"],
                  ",".join(d["topics"]), "double" if d["double_opt_in"] else "single",
                  d["subscribers"].get("active", 0), sum(d["subscribers"].values())] for d in data])


@lists_group.command("show")
@click.argument("name")
@json_option
def show(name: str, as_json: bool) -> None:
    """Show one mailing list's settings and subscriber counts.

    min_articles, max_articles, skip_thin_days and language are the list's own (- / null: it follows the
    settings); "effective" shows the values its editions use.
    """
    app = get_app()
    with app.store.session() as session:
        row = lists_lib.get_list(session, name)
        data = lists_lib.list_to_json(row, lists_lib.subscriber_counts(session, row.id).get(row.id, {}),
                                      app.settings)
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        if isinstance(value, list):
            value = ", ".join(value) or "-"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items()) or "none"
        click.echo(f"{key:>16}: {'-' if value is None else value}")


@lists_group.command("rm")
@click.argument("name")
@click.option("--force", is_flag=True, help="Also remove the list's subscribers (required when it has any).")
@json_option
def rm(name: str, force: bool, as_json: bool) -> None:
    """Remove the mailing list NAME (and, with --force, its subscribers)."""
    app = get_app()
    with app.store.session() as session:
        removed = lists_lib.remove_list(session, name, force=force)
    if as_json:
        print_json({"removed": name, "subscribers_removed": removed})
    else:
        click.echo(f"Removed list {name!r}" + (f" and its {removed} subscriber(s)." if removed else "."))


commands = [lists_group]
