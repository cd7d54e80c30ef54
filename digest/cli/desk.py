"""`digest editions desk|pin|unpin|leave-out|move|add`: the editor's desk as commands (attached to `editions`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import click

from digest.cli import get_app
from digest.cli.output import json_option, list_option, print_json, print_table
from digest.desk import actions
from digest.desk.actions import DeskChange
from digest.desk.settings import DeskSettings
from digest.desk.view import desk_view


def _date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


date_option = click.option("--date", "day", metavar="YYYY-MM-DD", callback=_date,
                           help="The edition's date (default: the list's upcoming edition).")
by_option = click.option("--by", "by", metavar="NAME", help="Who makes the change (default: desk_editor, else "
                         "the login name); kept in the audit log.")
article_argument = click.argument("article_id", metavar="ARTICLE")


def _report(change: DeskChange, as_json: bool) -> None:
    if as_json:
        print_json(change.to_json())
        return
    what = f"edition {change.edition_id} ({change.list_name} {change.date})"
    if change.changed:
        click.echo(f"{change.action}: {change.detail} — {what}, by {change.by}.")
    else:
        click.echo(f"{change.action}: nothing to change in {what} {change.detail}".rstrip() + ".")


def _run(by: str | None, work: Callable[[str, datetime], DeskChange], as_json: bool) -> None:
    app = get_app()
    who = by or DeskSettings.from_settings(app.settings).editor
    change = work(who, datetime.now(UTC))
    _report(change, as_json)


@click.command("desk")
@list_option
@date_option
@json_option
def desk_command(list_name: str | None, day: date | None, as_json: bool) -> None:
    """Show an edition as the editor's desk sees it: its articles in order (pinned, added, moved), the
    candidates that did not make it and why, the subject and any subjects under test, the editor's note, the
    approval and the changes made so far."""
    app = get_app()
    with app.store.session() as session:
        view = desk_view(session, app.settings, list_name, day, now=datetime.now(UTC))
    if as_json:
        print_json(view.to_json())
        return
    click.echo(f"Edition {view.edition_id or '-'} · {view.list_name} · {view.date} · {view.status or 'not created'}")
    click.echo(f"  subject: {view.subject or '-'}")
    if view.require_approval:
        click.echo(f"  approved by {view.approved_by} at {view.approved_at:%Y-%m-%d %H:%M} UTC" if view.approved_at
                   else "  not approved yet (`digest editions approve ID`)")
    if view.locked:
        click.echo(f"  read-only: {view.locked}")
    if view.note:
        click.echo("  editor's note: " + " / ".join(line for line in view.note.splitlines() if line.strip()))
    test = view.subject_test
    if test is not None:
        drawn = test["drawn_at"] is not None
        print_table(["#", "subject", "sample", "clicks", "opens", "winner"],
                    [(n, s["subject"], s["sample"] if drawn else "-", s["clicks"] if drawn else "-",
                      s["opens"] if drawn else "-", "yes" if s["winner"] else "")
                     for n, s in enumerate(test["subjects"], start=1)], title="subjects under test")
    print_table(["#", "article", "title", "marks"],
                [(a.position, a.id, a.title, ", ".join(m for m, on in (("pinned", a.pinned or a.pinned_everywhere),
                                                                     ("added", a.added), ("moved", a.moved)) if on))
                 for a in view.articles], title="in the edition")
    print_table(["article", "title", "why not"], [(c.id, c.title, c.reason) for c in view.candidates],
                title="candidates that did not make it")
    if view.history:
        print_table(["at", "by", "action", "what"],
                    [(f"{h.at:%Y-%m-%d %H:%M}", h.by, h.action, h.detail) for h in view.history], title="changes")


@click.command("pin")
@article_argument
@list_option
@date_option
@by_option
@json_option
def pin_command(article_id: str, list_name: str | None, day: date | None, by: str | None, as_json: bool) -> None:
    """Pin ARTICLE in one edition: it is kept and placed first (among the pinned), whatever its score.

    For every edition, use `digest articles pin`. Refused once the edition's first delivery has gone out.
    """
    def work(who: str, now: datetime) -> DeskChange:
        app = get_app()
        with app.store.session() as session:
            return actions.pin(session, app.settings, list_name, day, article_id, by=who, now=now)

    _run(by, work, as_json)


@click.command("unpin")
@article_argument
@list_option
@date_option
@by_option
@json_option
def unpin_command(article_id: str, list_name: str | None, day: date | None, by: str | None,
                  as_json: bool) -> None:
    """Undo `digest editions pin`: ARTICLE is ranked by its score again in that edition."""
    def work(who: str, now: datetime) -> DeskChange:
        app = get_app()
        with app.store.session() as session:
            return actions.unpin(session, app.settings, list_name, day, article_id, by=who, now=now)

    _run(by, work, as_json)


@click.command("leave-out")
@article_argument
@list_option
@date_option
@click.option("--reason", metavar="TEXT", help="Why, kept in the edition's record and the audit log.")
@click.option("--everywhere", is_flag=True,
              help="Retract ARTICLE instead (every edition not yet delivered), as `digest articles retract`.")
@by_option
@json_option
def leave_out_command(article_id: str, list_name: str | None, day: date | None, reason: str | None,
                      everywhere: bool, by: str | None, as_json: bool) -> None:
    """Leave ARTICLE out of one edition only; the next story takes its place. `digest editions add` brings it
    back. Refused once the edition's first delivery has gone out."""
    def work(who: str, now: datetime) -> DeskChange:
        app = get_app()
        if everywhere:
            return actions.leave_out_everywhere(app, list_name, day, article_id, by=who, now=now)
        with app.store.session() as session:
            return actions.leave_out(session, app.settings, list_name, day, article_id, reason=reason, by=who,
                                     now=now)

    _run(by, work, as_json)


@click.command("move")
@article_argument
@list_option
@date_option
@click.option("--up", "direction", flag_value="up", help="One place up (the default).", default=True)
@click.option("--down", "direction", flag_value="down", help="One place down.")
@by_option
@json_option
def move_command(article_id: str, list_name: str | None, day: date | None, direction: str, by: str | None,
                 as_json: bool) -> None:
    """Move ARTICLE one place up or down in one edition: the editor's order overrides the score there."""
    way: actions.Direction = "down" if direction == "down" else "up"

    def work(who: str, now: datetime) -> DeskChange:
        app = get_app()
        with app.store.session() as session:
            return actions.move(session, app.settings, list_name, day, article_id, way, by=who, now=now)

    _run(by, work, as_json)


@click.command("add")
@article_argument
@list_option
@date_option
@by_option
@json_option
def add_command(article_id: str, list_name: str | None, day: date | None, by: str | None, as_json: bool) -> None:
    """Add ARTICLE, a candidate that did not make the edition (see `digest editions desk`), at the place its
    score gives it; when the edition is full, the last article neither pinned nor added makes room."""
    def work(who: str, now: datetime) -> DeskChange:
        app = get_app()
        with app.store.session() as session:
            return actions.add(session, app.settings, list_name, day, article_id, by=who, now=now)

    _run(by, work, as_json)


def _attach() -> None:
    # The editions group belongs to the send part; the desk's commands join it.
    from digest.cli.editions import editions_group

    for command in (desk_command, pin_command, unpin_command, leave_out_command, move_command, add_command):
        if command.name not in editions_group.commands:
            editions_group.add_command(command)


_attach()

commands: list[click.Command] = []
