"""`digest editions`: list, inspect and cancel editions; `digest articles retract` (attached to `articles`)."""

from __future__ import annotations

import datetime as _dt
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from digest import editions
from digest.audience.lists import ensure_list, get_list
from digest.cli import get_app
from digest.cli.output import json_option, print_json, print_table
from digest.desk.settings import DeskSettings
from digest.editorial.note import set_note
from digest.send import subject_test
from digest.send.editorial import cancel_edition, list_editions, retract_article, show_edition


@click.group("editions")
def editions_group() -> None:
    """Editions of each list: what went out, what is in doubt, and editorial control."""


@editions_group.command("ls")
@click.option("--list", "list_name", metavar="LIST", help="Only this list's editions.")
@click.option("--limit", default=50, show_default=True, help="Most editions shown, newest first.")
@json_option
def ls_command(list_name: str | None, limit: int, as_json: bool) -> None:
    """List editions, newest first, with their delivery counts."""
    app = get_app()
    if list_name:
        # A misspelt name would otherwise print an empty table and exit 0, as if the list had no editions.
        with app.store.session() as session:
            get_list(session, list_name)
    rows = list_editions(app, list_name, limit)
    if as_json:
        print_json(rows)
        return
    print_table(["id", "list", "date", "status", "variants", "deliveries", "by status"],
                [(r["id"], r["list"], r["date"], r["status"], r["variants"], r["deliveries"],
                  ", ".join(f"{k} {v}" for k, v in sorted(r["counts"].items()))) for r in rows],
                title="editions")


@editions_group.command("show")
@click.argument("edition_id", metavar="ID", type=int)
@json_option
def show_command(edition_id: int, as_json: bool) -> None:
    """Show one edition: counts, variants with their subscribers, articles, and in-doubt deliveries."""
    data = show_edition(get_app(), edition_id)
    if as_json:
        print_json(data)
        return
    click.echo(f"Edition {data['id']} · {data['list']} · {data['date']} · {data['status']}")
    click.echo(f"  window {data['window_start']:%Y-%m-%d %H:%M} → {data['cutoff_at']:%Y-%m-%d %H:%M} UTC; "
               f"frozen {data['frozen_at'] or 'no'}")
    click.echo("  deliveries: " + (", ".join(f"{k} {v}" for k, v in sorted(data["counts"].items())) or "none"))
    if data.get("editor_note"):
        click.echo("  editor's note:")
        for line in str(data["editor_note"]).splitlines():
            click.echo(f"    {line}")
    print_table(["variant", "subscribers", "articles", "subject"],
                [(v["id"], v["subscribers"], len(v["article_ids"]), v["subject"]) for v in data["variants"]],
                title="variants")
    if data["preview"] is not None:
        click.echo(f"  not planned yet: the articles below are the list's own selection"
                   f"{' (thin)' if data['preview']['thin'] else ''}; see the email with "
                   f"`{data['preview']['render']}`")
    print_table(["article", "title", "delivered", "retracted"],
                [(a["id"], a["title"], "yes" if a["delivered"] else "", "yes" if a["retracted"] else "")
                 for a in data["articles"]], title="articles")
    test = data["subject_test"]
    if test is not None:
        _print_subject_test(test)
    if data["in_doubt"]:
        print_table(["delivery", "email", "batch", "why"],
                    [(d["delivery_id"], d["email"], d["batch_id"], d["error"]) for d in data["in_doubt"]],
                    title="in doubt (the provider may or may not have sent these)")
    if data["failed"]:
        print_table(["delivery", "email", "error"],
                    [(d["delivery_id"], d["email"], d["error"]) for d in data["failed"]], title="failed")


@editions_group.command("note")
@click.option("--list", "list_name", metavar="LIST", help="The list (default: the default list).")
@click.option("--date", "date_", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="Edition date (default: the list's upcoming edition).")
@click.option("--file", "file_", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the note from this UTF-8 file instead of TEXT.")
@click.option("--clear", is_flag=True, help="Remove the note (the email opens with the greeting again).")
@click.option("--by", "by", metavar="NAME", help="Who makes the change (default: desk_editor, else the login "
              "name); kept in the audit log.")
@click.argument("text", required=False)
@json_option
def note_command(list_name: str | None, date_: datetime | None, file_: Path | None, clear: bool,
                 by: str | None, text: str | None, as_json: bool) -> None:
    """Set the editor's note that opens an edition (email, text part, web version).

    TEXT (or --file) is a small Markdown subset: paragraphs (blank lines), *emphasis*, **strong** and
    [links](https://...); HTML in it is shown as text. The note can change until the edition's first delivery
    and is refused after it (readers have the note they got), as every change at the editor's desk is; it is
    audit-logged with who (--by) and when. Variants already rendered are rendered again.
    """
    given = [x for x in (text is not None, file_ is not None, clear) if x]
    if len(given) != 1:
        raise click.UsageError("give exactly one of TEXT, --file or --clear")
    if file_ is not None:
        try:
            text = file_.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise click.BadParameter(f"{file_}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                                     param_hint="--file") from exc
    app = get_app()
    who = by or DeskSettings.from_settings(app.settings).editor
    with app.store.session() as session:
        change = set_note(session, app.settings, list_name, date_.date() if date_ else None,
                          None if clear else text, by=who)
    if as_json:
        print_json(change.to_json())
        return
    where = f"{change.list_name} on {change.date.isoformat()} (edition {change.edition_id})"
    if not change.changed:
        click.echo(f"Note unchanged for {where}.")
        return
    what = "cleared" if change.note is None else "set"
    click.echo(f"Note {what} for {where} by {change.by}"
               + (f"; re-rendered variant(s) {', '.join(map(str, change.rerendered_variants))}."
                  if change.rerendered_variants else "."))


def _print_subject_test(test: dict[str, Any]) -> None:
    if test["drawn_at"] is None:
        state = f"sample ({test['sample_percent']}%) drawn at the edition's send"
    elif test["winner"] is None:
        state = f"{test['held']} held until {test['decide_at']:%Y-%m-%d %H:%M} UTC, then the winner"
    else:
        state = f"winner decided {test['decided_at']:%Y-%m-%d %H:%M} UTC; {test['sent_the_winner']} given it"
    print_table(["subject", "sample", "sent", "clickers", "openers", f"score ({test['metric']})", "winner"],
                [(t["subject"], t["sample"], t["sent"], t["clicks"], t["opens"], t["score"],
                  "yes" if t["winner"] else "") for t in test["subjects"]],
                title=f"subject test: {state}")


@editions_group.command("subject-test")
@click.option("--list", "list_name", metavar="LIST", help="The list (default: default_list).")
@click.option("--date", "day", metavar="YYYY-MM-DD", required=True, help="The edition's date.")
@click.option("--subject", "subjects", multiple=True, required=True,
              help="A subject to test (give two or more).")
@click.option("--sample-percent", type=click.IntRange(1, 100), default=20, show_default=True,
              help="Share of the readers who get a test subject, split evenly among the subjects.")
@click.option("--decide-after", default="2h", show_default=True,
              help="How long after the sample's send the winner is chosen (e.g. 2h, 90m, 0s).")
@click.option("--by", "metric", type=click.Choice(subject_test.METRICS), default="clicks", show_default=True,
              help="What wins: unique clickers, or unique human openers, per message sent.")
@json_option
def subject_test_command(list_name: str | None, day: str, subjects: tuple[str, ...], sample_percent: int,
                         decide_after: str, metric: str, as_json: bool) -> None:
    """Test subjects on a sample of an edition's readers; the rest get the winner.

    At the edition's send (scheduled or `digest send`) the sample gets the subjects in equal shares and the rest
    waits; once --decide-after has passed, the next send (or the scheduler) sends the winner to everyone else.
    Each reader gets one subject, once. `digest editions show ID` reports each subject and the winner.
    """
    app = get_app()
    seconds = subject_test.parse_duration(decide_after)
    try:
        date_ = _dt.date.fromisoformat(day)
    except ValueError:
        raise click.BadParameter(f"{day!r} is not a date (YYYY-MM-DD)", param_hint="--date") from None
    with app.store.session() as session:
        list_row = ensure_list(session, app.settings, list_name)
        edition = editions.get_or_create_edition(session, app.settings, list_row, date_)
        test = subject_test.create(session, edition, list(subjects), sample_percent=sample_percent,
                                   decide_after=seconds, metric=metric)
        data: dict[str, Any] = {"edition_id": edition.id, "list": list_row.name, "date": date_,
                                "subjects": list(test.subjects),
                "sample_percent": test.sample_percent, "decide_after_seconds": test.decide_after_seconds,
                "by": test.metric}
    if as_json:
        print_json(data)
        return
    click.echo(f"Subject test set on edition {data['edition_id']} ({data['list']} {date_}): {sample_percent}% "
               f"split among {len(data['subjects'])} subjects, the winner by {metric} after {decide_after} "
               "goes to the rest.")


@editions_group.command("cancel")
@click.argument("edition_id", metavar="ID", type=int)
@json_option
def cancel_command(edition_id: int, as_json: bool) -> None:
    """Stop every delivery of edition ID not yet made (pending → cancelled); a running send stops too."""
    result = cancel_edition(get_app(), edition_id)
    if as_json:
        print_json(result)
    else:
        click.echo(f"Edition {edition_id} cancelled: {result['cancelled']} pending deliveries will not be sent.")


@click.command("retract")
@click.argument("article_id", metavar="ID")
@json_option
def retract_command(article_id: str, as_json: bool) -> None:
    """Take article ID out of every edition not yet fully delivered (their variants are re-rendered)."""
    outcome = retract_article(get_app(), article_id)
    if as_json:
        print_json(outcome.to_json())
        return
    click.echo(f"Article {article_id} retracted.")
    for e in outcome.editions:
        click.echo(f"  edition {e['edition_id']}: {e['deliveries_moved']} pending deliveries moved to "
                   f"variant(s) {', '.join(map(str, e['new_variants'])) or '-'}")
    if not outcome.editions:
        click.echo("  no open edition showed it.")


def _attach_retract() -> None:
    # The articles group belongs to the ingest part; `retract` is the send part's, attached here.
    from digest.cli.articles import articles_group

    if "retract" not in articles_group.commands:
        articles_group.add_command(retract_command)


_attach_retract()

commands = [editions_group]
